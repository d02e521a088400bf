"""Column lanes: the parallel accumulator gives the serial profile bit for bit; errors surface."""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot.drift import Categorical, ProfileAccumulator, _kernels, build_reference
from modelpilot.drift._kernels import CategoryEncoder, _count_below
from modelpilot.drift._lanes import lane_count, run_lanes, set_lane_count
from modelpilot.drift.frames import chunk_frame

RNG = np.random.default_rng(5)
CATS = [f"v{i}" for i in range(40)]


def frame(rows: int, shift: float) -> dict[str, object]:
    cols: dict[str, object] = {f"x{i}": RNG.normal(shift * i, 1.0, rows) for i in range(6)}
    cols["x0"][RNG.random(rows) < 0.05] = np.nan  # type: ignore[index]
    cols["c"] = Categorical(RNG.integers(-1, len(CATS), rows), CATS)
    cols["t"] = np.array(RNG.choice(["a", "b", "zz", ""], rows), dtype=object)
    return cols


@pytest.fixture
def threads():
    yield set_lane_count
    set_lane_count(None)


def test_lanes_give_the_serial_profile_bit_for_bit(threads):
    ref = build_reference(frame(50_000, 0.0))
    cur = frame(150_000, 0.1)
    threads(1)
    serial = ProfileAccumulator(ref).add_all(cur).to_json()
    serial_chunks = ProfileAccumulator(ref).add_all(list(chunk_frame(cur))).to_json()
    threads(4)
    assert lane_count() == 4
    assert ProfileAccumulator(ref).add_all(cur).to_json() == serial == serial_chunks
    assert ProfileAccumulator(ref).add_all(list(chunk_frame(cur))).to_json() == serial


def test_an_empty_frame_adds_nothing(threads):
    ref = build_reference(frame(1_000, 0.0))
    cur = ProfileAccumulator(ref).add_all({"x1": np.zeros(0), "extra": np.zeros(0)})
    assert cur.rows == 0 and cur.extra_columns == {}


def test_a_lane_error_is_raised_after_every_lane_ran(threads):
    threads(2)
    done: list[int] = []

    def work(i: int) -> int:
        if i == 1:
            raise ValueError("lane 1")
        done.append(i)
        return i

    with pytest.raises(ValueError, match="lane 1"):
        run_lanes(work, [0, 1, 2, 3])
    assert sorted(done) == [0, 2, 3]
    assert run_lanes(lambda i: i * i, [1, 2, 3]) == [1, 4, 9]
    with pytest.raises(ValueError, match="at least 1"):
        set_lane_count(0)


def test_count_below_equals_searchsorted():
    edges = np.unique(RNG.normal(size=300))
    points = np.sort(np.r_[RNG.normal(size=5_000), edges, -np.inf, np.inf])
    assert np.array_equal(_count_below(edges, points), np.searchsorted(edges, points, side="left"))


def test_the_encoder_memo_overflowing_changes_no_slot(monkeypatch):
    values = [f"v{i}" for i in range(30)]
    fresh = CategoryEncoder(values[:5], values[5:10], tail=4)
    expected = fresh.encode([*values, None, "new"])
    monkeypatch.setattr(_kernels, "_ENCODED_TEXTS", 12)
    small = CategoryEncoder(values[:5], values[5:10], tail=4)
    small.encode(values[:10])  # fills the memo: the next call overflows it
    for got, want in zip(
        small.encode([*values[:12], None, "new"]), fresh.encode([*values[:12], None, "new"]), strict=True
    ):
        assert np.array_equal(got, want)
    for got, want in zip(small.encode([*values, None, "new"]), expected, strict=True):  # more texts than the memo holds
        assert np.array_equal(got, want)
