"""Partial drift profiles and their merge: exact counts, commutative and associative, retries counted once.

Windows are CSV files in the in-memory artifact store, read by the real readers
through ``run_partial``; the reference is a real reference profile. What these
prove: for any split of any window into consecutive batches, merged partials
equal the single pass (counts, read statistics and examples bit for bit,
moments and bin sums to 1e-12); the merge is commutative bit for bit and
associative to the same tolerance; a partial delivered twice counts once and
overlapping partials are refused. What they cannot prove: behaviour with more
than 20 distinct unseen categories (the examples list is a top-20 and trimmed
in any order, so it may differ; the unseen count never does).
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpilot.drift.builder import build_reference
from modelpilot.drift.profile import CategoricalProfile, NumericProfile, Profile
from modelpilot.exceptions import AlreadyExists, DataError
from modelpilot.service.drift.fanout import Batch, PartialProfile, WindowPlan, merge_partials, plan_batches
from modelpilot.service.drift.window import load_partial, run_partial, store_partial
from modelpilot.testing import fake_services

REF_URI = "mem://data/profiles/m/v1/reference-profile.json"
SEEN = ["a", "b", "c", "d"]
UNSEEN = ["u1", "u2", "u3", "zz"]

value = st.one_of(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
    st.sampled_from(["", "inf", "-inf", "nan", "oops"]),
)
row = st.tuples(value, st.sampled_from([*SEEN, *UNSEEN, ""]))
data_file = st.tuples(
    st.lists(row, max_size=25),
    st.sampled_from(["ok", "ok", "ok", "bad_rows", "broken"]),
)


def _services():
    svc = fake_services()
    rng = np.random.default_rng(7)
    reference = build_reference(
        {"x": rng.normal(0, 300, 2000), "c": np.asarray(rng.choice(SEEN, 2000), dtype=object)},
        bins=50,
        top_k=3,
    )
    svc.artifacts.write_bytes(REF_URI, reference.to_json())
    return svc


def _window(svc, files) -> WindowPlan:
    listed = []
    for i, (rows, kind) in enumerate(files):
        body = "x,c\n" + "".join(f"{x},{c}\n" for x, c in rows)
        if kind == "bad_rows":
            body += "1,2,3\n"
        uri = f"mem://data/captures/m/e/part-{i:03d}.csv"
        raw = body.encode()
        if kind == "broken":
            uri += ".gz"
            raw = gzip.compress(raw)[:-9]  # truncated: the file cannot be read
        svc.artifacts.write_bytes(uri, raw)
        listed.append((uri, len(raw)))
    return WindowPlan(
        "m", "e", 1, "m-e-rid", "2026-01-01T00:00:00+00:00", "2026-01-01T06:00:00+00:00", None, REF_URI, tuple(listed)
    )


def _cuts(plan: WindowPlan, cuts: list[int]) -> list[Batch]:
    bounds = sorted({c % max(1, len(plan.files)) for c in cuts if c % max(1, len(plan.files))})
    edges = [0, *bounds, len(plan.files)]
    out = []
    for i, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        files = tuple(u for u, _ in plan.files[lo:hi])
        out.append(Batch(i, files, sum(n for _, n in plan.files[lo:hi]), f"k{i}"))
    return out


def _single(svc, plan: WindowPlan) -> PartialProfile:
    whole = Batch(0, tuple(u for u, _ in plan.files), plan.total_bytes, "all")
    return run_partial(svc, plan, whole)


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        return a == b or (math.isnan(a) and math.isnan(b))
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9)


def assert_same(p: Profile, q: Profile) -> None:
    """Counts bit for bit, floats to 1e-12."""
    assert (p.rows, p.corrupt_rows, p.extra_columns) == (q.rows, q.corrupt_rows, q.extra_columns)
    assert list(p.features) == list(q.features)
    for name, f in p.features.items():
        g = q.features[name]
        assert np.array_equal(f.counts, g.counts)
        if isinstance(f, NumericProfile):
            assert isinstance(g, NumericProfile)
            ints = (
                "missing",
                "type_errors",
                "posinf",
                "neginf",
                "n_finite",
                "out_of_bounds",
                "absent",
                "n_below",
                "n_above",
            )
            assert [getattr(f, k) for k in ints] == [getattr(g, k) for k in ints]
            assert (f.minimum, f.maximum) == (g.minimum, g.maximum)
            for k in ("mean", "m2", "tail_below", "tail_above"):
                assert _close(getattr(f, k), getattr(g, k)), (k, getattr(f, k), getattr(g, k))
            assert f.sums is not None and g.sums is not None
            assert np.allclose(f.sums, g.sums, rtol=1e-12, atol=1e-9)
        else:
            assert isinstance(f, CategoricalProfile) and isinstance(g, CategoricalProfile)
            assert (f.missing, f.absent, f.unseen_values) == (g.missing, g.absent, g.unseen_values)


def assert_same_partial(a: PartialProfile, b: PartialProfile) -> None:
    assert (a.files, a.corrupt_files, a.rows, a.corrupt_rows) == (b.files, b.corrupt_files, b.rows, b.corrupt_rows)
    assert [t for _, t in a.examples] == [t for _, t in b.examples]
    assert_same(a.profile, b.profile)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.lists(data_file, min_size=1, max_size=7), st.lists(st.integers(0, 50), max_size=6), st.randoms())
def test_fanned_out_equals_single_pass(files, cuts, random):
    svc = _services()
    plan = _window(svc, files)
    single = _single(svc, plan)
    batches = _cuts(plan, cuts)
    partials = [run_partial(svc, plan, b) for b in batches]
    random.shuffle(partials)
    merged = merge_partials(partials)
    assert merged is not None and merged.batches == frozenset(b.index for b in batches)
    assert_same_partial(merged, single)


@FAST
@given(st.lists(data_file, min_size=3, max_size=6), st.lists(st.integers(1, 50), min_size=2, max_size=5))
def test_merge_is_commutative_and_associative(files, cuts):
    svc = _services()
    plan = _window(svc, files)
    batches = _cuts(plan, cuts)
    if len(batches) < 3:
        batches = [Batch(i, (u,), n, f"k{i}") for i, (u, n) in enumerate(plan.files)]
    a, b, c = (run_partial(svc, plan, x) for x in batches[:3])
    assert a.merge(b).to_json() == b.merge(a).to_json()  # commutative bit for bit
    assert_same_partial(a.merge(b).merge(c), a.merge(b.merge(c)))
    assert_same_partial(a.merge(c).merge(b), c.merge(b).merge(a))


@FAST
@given(st.lists(data_file, min_size=2, max_size=5))
def test_a_retried_batch_counts_once_and_overlaps_are_refused(files):
    svc = _services()
    plan = _window(svc, files)
    batches = _cuts(plan, [1])
    first, second = (run_partial(svc, plan, b) for b in batches)
    retried = run_partial(svc, plan, batches[0])
    once = merge_partials([first, second])
    twice = merge_partials([first, retried, second, first])
    assert once is not None and twice is not None
    assert once.to_json() == twice.to_json()
    with pytest.raises(DataError, match="count twice"):
        merge_partials([first.merge(second), second])
    with pytest.raises(DataError, match="count twice"):
        first.merge(retried)


def test_partials_round_trip_and_large_ones_are_written_once_by_batch_key():
    svc = _services()
    rows = [(float(i), "abcd"[i % 4]) for i in range(30)]
    plan = _window(svc, [(rows, "ok"), (rows, "bad_rows")])
    (batch,) = plan_batches(plan, max_bytes=10**9)
    partial = run_partial(svc, plan, batch)
    assert PartialProfile.from_json(partial.to_json()).to_json() == partial.to_json()
    inline = store_partial(svc, plan, batch, partial)
    assert "partial" in inline and "uri" not in inline
    written = store_partial(svc, plan, batch, partial, inline_limit=100)
    assert written["uri"].endswith(f"/partials/m/e/m-e-rid/{batch.key}.json") and "partial" not in written
    again = store_partial(svc, plan, batch, run_partial(svc, plan, batch), inline_limit=100)  # a retried child
    assert again == written
    assert load_partial(svc, plan, written).to_json() == load_partial(svc, plan, inline).to_json()
    other = run_partial(svc, plan, Batch(batch.index, batch.files[:1], 1, batch.key))
    with pytest.raises(AlreadyExists):  # a different partial can never replace the stored one
        store_partial(svc, plan, batch, other, inline_limit=100)
    with pytest.raises(DataError, match="not under this window"):
        load_partial(svc, plan, {"uri": "mem://data/profiles/m/v1/reference-profile.json"})


def test_batches_follow_file_order_and_size():
    plan = WindowPlan("m", "e", 1, "rid", "s", "e", None, REF_URI, tuple((f"f{i}.csv", 10) for i in range(10)))
    batches = plan_batches(plan, max_bytes=25)
    assert [b.files for b in batches] == [
        ("f0.csv", "f1.csv"),
        ("f2.csv", "f3.csv"),
        ("f4.csv", "f5.csv"),
        ("f6.csv", "f7.csv"),
        ("f8.csv", "f9.csv"),
    ]
    assert [b.index for b in batches] == list(range(5))
    assert plan_batches(plan, max_bytes=25) == batches  # deterministic keys
    assert len({b.key for b in batches}) == 5
    assert [len(b.files) for b in plan_batches(plan, max_bytes=10**9, max_files=3)] == [3, 3, 3, 1]
    big = WindowPlan("m", "e", 1, "rid", "s", "e", None, REF_URI, (("huge.csv", 100), ("x.csv", 1)))
    assert [b.files for b in plan_batches(big, max_bytes=10)] == [("huge.csv",), ("x.csv",)]
    with pytest.raises(DataError):
        plan_batches(plan, max_bytes=0)
    assert WindowPlan.from_dict(plan.to_dict()) == plan
    assert Batch.from_dict(batches[0].to_dict()) == batches[0]
    with pytest.raises(DataError, match="not a drift window plan"):
        WindowPlan.from_dict({"model": "m"})


def test_bad_partials_raise_typed_errors():
    with pytest.raises(DataError, match="format marker"):
        PartialProfile.from_json(b'{"format": "x"}')
    with pytest.raises(DataError, match="cannot read"):
        PartialProfile.from_json(b"not json")
    svc = _services()
    plan = _window(svc, [([(1.0, "a")], "ok")])
    (batch,) = plan_batches(plan, max_bytes=10**9)
    partial = run_partial(svc, plan, batch)
    stranger = PartialProfile("other-window", frozenset({1}), partial.profile)
    with pytest.raises(DataError, match="windows"):
        partial.merge(stranger)
