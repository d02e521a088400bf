"""Profiles merge by addition: chunk profiles merged equal the profile of the whole."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.frames import Categorical, Chunk
from modelpilot.drift.profile import CategoricalProfile, NumericProfile, Profile
from modelpilot.exceptions import DataError

RNG = np.random.default_rng(7)
REFERENCE = build_reference(
    {
        "x": RNG.normal(size=5000),
        "y": RNG.integers(0, 5, 5000).astype(float),
        "c": np.array(RNG.choice(["a", "b", "c", "d"], 5000), dtype=object),
    },
    bins=200,
    top_k=2,
)

values = st.floats(min_value=-1e12, max_value=1e12) | st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 2.0])


def chunk(x: np.ndarray, y: np.ndarray, c: list[str | None]) -> Chunk:
    return Chunk({"x": x, "y": y, "c": np.array(c, dtype=object)}, len(x))


def assert_same(a: Profile, b: Profile) -> None:
    assert a.rows == b.rows and a.corrupt_rows == b.corrupt_rows
    for name, fa in a.features.items():
        fb = b.features[name]
        assert np.array_equal(fa.counts, fb.counts), name
        assert fa.missing == fb.missing and fa.absent == fb.absent
        if isinstance(fa, NumericProfile):
            assert isinstance(fb, NumericProfile)
            assert (fa.n_finite, fa.posinf, fa.neginf, fa.n_below, fa.n_above) == (
                fb.n_finite,
                fb.posinf,
                fb.neginf,
                fb.n_below,
                fb.n_above,
            )
            assert fa.minimum == fb.minimum and fa.maximum == fb.maximum
            scale = max(1.0, abs(fa.mean))
            assert fa.mean == pytest.approx(fb.mean, rel=1e-9, abs=1e-9 * scale)
            assert fa.m2 == pytest.approx(fb.m2, rel=1e-7, abs=1e-6 * scale * scale)
            assert fa.tail_below == pytest.approx(fb.tail_below, rel=1e-9)
            assert fa.tail_above == pytest.approx(fb.tail_above, rel=1e-9)
        else:
            assert isinstance(fa, CategoricalProfile) and isinstance(fb, CategoricalProfile)
            assert fa.unseen_values == fb.unseen_values


@settings(max_examples=80, deadline=None)
@given(
    data=hnp.arrays(np.float64, st.integers(1, 400), elements=values),
    cats=st.lists(st.sampled_from(["a", "b", "c", "d", "new", "other", None, ""]), min_size=400, max_size=400),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_merged_chunk_profiles_equal_the_whole(data, cats, cuts):
    n = len(data)
    with np.errstate(invalid="ignore"):
        y = np.round(data[::-1] % 7)
    c = cats[:n]
    whole = ProfileAccumulator(REFERENCE).add_all([chunk(data, y, c)])
    bounds = sorted({0, n, *(min(k, n) for k in cuts)})
    parts = [
        ProfileAccumulator(REFERENCE).add_all([chunk(data[s:e], y[s:e], c[s:e])])
        for s, e in zip(bounds, bounds[1:], strict=False)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert_same(merged, whole)
    streamed = ProfileAccumulator(REFERENCE).add_all(
        [chunk(data[s:e], y[s:e], c[s:e]) for s, e in zip(bounds, bounds[1:], strict=False)]
    )
    assert_same(streamed, whole)


def test_serialisation_round_trips_exactly():
    cur = ProfileAccumulator(REFERENCE).add_all({"x": RNG.normal(size=20), "c": np.array(["a", "zz"] * 10)})
    for profile in (REFERENCE, cur):
        again = Profile.from_json(profile.to_json())
        assert again.to_json() == profile.to_json()
        assert_same(again, profile)
        x = again.features["x"]
        assert isinstance(x, NumericProfile)
        assert np.array_equal(x.edges, profile.features["x"].edges)  # type: ignore[union-attr]


def test_reference_profile_shape():
    x = REFERENCE.features["x"]
    assert isinstance(x, NumericProfile)
    assert len(x.edges) == 201 and x.counts.sum() == 5000
    assert x.edges[0] == x.minimum and x.edges[-1] == x.maximum
    assert x.counts[-1] == 0  # nothing above the reference maximum
    y = REFERENCE.features["y"]
    assert isinstance(y, NumericProfile) and np.array_equal(y.edges, [0.0, 1.0, 2.0, 3.0, 4.0])
    c = REFERENCE.features["c"]
    assert isinstance(c, CategoricalProfile)
    assert len(c.values) == 2 and sorted(c.other_values + c.values) == ["a", "b", "c", "d"]
    assert c.counts.sum() == 5000 and c.counts[-1] == 0


def test_merging_profiles_on_other_edges_is_refused():
    other = build_reference(
        {"x": RNG.normal(size=100), "y": RNG.normal(size=100), "c": np.array(["a"] * 100, dtype=object)}, bins=50
    )
    with pytest.raises(DataError, match="edges differ"):
        REFERENCE.merge(other)
    with pytest.raises(DataError, match="different feature sets"):
        REFERENCE.merge(build_reference({"z": RNG.normal(size=50)}))


@pytest.mark.parametrize(
    "blob",
    [
        b"{}",
        b"not json",
        b'{"format": "modelpilot.drift.profile", "version": 99}',
        b'{"format": "modelpilot.drift.profile", "version": 1}',
    ],
)
def test_bad_profiles_are_typed_errors(blob):
    with pytest.raises(DataError):
        Profile.from_json(blob)


def test_reference_needs_rows_and_its_columns():
    with pytest.raises(DataError, match="no readable rows"):
        build_reference({"x": np.array([])})
    from modelpilot.domain.model import FeatureSpec

    with pytest.raises(DataError, match="lacks the feature column"):
        build_reference({"x": np.ones(3)}, [FeatureSpec("x", "numeric"), FeatureSpec("y", "numeric")])


def test_in_memory_categorical_codes_are_counted_like_strings():
    codes = RNG.integers(-1, 4, 1000)
    cats = ["a", "b", "c", "zz"]
    as_codes = ProfileAccumulator(REFERENCE).add_all({"c": Categorical(codes, cats)})
    as_text = ProfileAccumulator(REFERENCE).add_all(
        {"c": np.array([cats[k] if k >= 0 else None for k in codes], dtype=object)}
    )
    assert np.array_equal(as_codes.features["c"].counts, as_text.features["c"].counts)
    assert as_codes.features["c"].missing == int((codes < 0).sum())
