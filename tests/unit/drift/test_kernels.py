"""The binning kernels agree exactly with ``np.searchsorted`` and a dictionary lookup."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelpilot.drift._kernels import CategoryEncoder, NumericBinner, dictionary_encode, numeric_chunk_stats


def reference_counts(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    kept = x[~np.isnan(x)]
    return np.bincount(np.searchsorted(edges, kept, side="left"), minlength=len(edges) + 1)


def edges_of(sample: np.ndarray, bins: int = 1000) -> np.ndarray:
    return np.unique(np.quantile(sample, np.linspace(0, 1, bins + 1)))


#: samplers of awkward numeric data (the binners' tests draw from each), by name
SAMPLERS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "lognormal": lambda rng, n: rng.lognormal(sigma=2.0, size=n),
    "cauchy": lambda rng, n: rng.standard_cauchy(n),
    "discrete": lambda rng, n: rng.integers(0, 7, n).astype(float),
    "near-ties": lambda rng, n: np.r_[rng.normal(size=n // 2), 1 + 1e-12 * rng.normal(size=n - n // 2)],
    "huge": lambda rng, n: rng.normal(size=n) * 1e150,
}


@pytest.mark.parametrize("make", SAMPLERS.values(), ids=SAMPLERS.keys())
def test_grid_binner_equals_searchsorted(make):
    rng = np.random.default_rng(11)
    edges = edges_of(make(rng, 20_000))
    binner = NumericBinner(edges)
    x = np.concatenate(
        [
            make(rng, 50_000),
            edges,
            np.nextafter(edges, np.inf),
            np.nextafter(edges, -np.inf),  # values on and beside every edge
            [np.nan, np.inf, -np.inf, np.nan, 0.0, -0.0],
        ]
    )
    rng.shuffle(x)
    assert np.array_equal(binner.count(x), reference_counts(edges, x))
    counts, sums = binner.count_and_sum(x)
    assert np.array_equal(counts, reference_counts(edges, x))
    idx = np.searchsorted(edges, x, side="left")
    inner = (idx > 0) & (idx < len(edges))
    expected = np.bincount(idx[inner], weights=x[inner], minlength=len(edges) + 1)
    np.testing.assert_allclose(sums[1:-1], expected[1:-1], rtol=1e-12, atol=1e-300)


@settings(max_examples=60, deadline=None)
@given(
    edges=hnp.arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e6, 1e6), unique=True),
    x=hnp.arrays(np.float64, st.integers(0, 600), elements=st.floats(allow_nan=True, allow_infinity=True)),
)
def test_binner_property(edges, x):
    edges = np.sort(edges)
    assert np.array_equal(NumericBinner(edges).count(x), reference_counts(edges, x))


def test_chunk_stats_skip_missing_and_infinite():
    x = np.array([1.0, 2.0, np.nan, np.inf, -np.inf, 3.0])
    stats = numeric_chunk_stats(x)
    assert (stats.n_missing, stats.n_posinf, stats.n_neginf, stats.n_finite) == (1, 1, 1, 3)
    assert stats.mean == pytest.approx(2.0)
    assert stats.m2 * stats.scale**2 == pytest.approx(2.0)  # m2 is kept in units of scale squared
    assert (stats.minimum, stats.maximum) == (1.0, 3.0)


def test_chunk_stats_of_huge_values_stay_finite():
    stats = numeric_chunk_stats(np.array([1e300, -1e300, 5e299, np.nan]))
    assert stats.n_finite == 3
    assert np.isfinite(stats.mean) and stats.mean == pytest.approx(5e299 / 3)


def test_category_encoder_slots_other_unseen_and_missing():
    enc = CategoryEncoder(["basic", "pro"], ["legacy"])
    values = np.array(["pro", "basic", "legacy", "new", None, "", "pro", "new", "NA"], dtype=object)
    codes, categories = dictionary_encode(values)
    counts, missing, unseen = enc.count_codes(codes, categories)
    assert counts.tolist() == [1, 2, 1, 2]  # basic, pro, other, unseen
    assert missing == 3
    assert unseen == {"new": 2}


def test_dictionary_encode_mixed_types_falls_back():
    codes, categories = dictionary_encode(np.array([1, "a", 1, None, 2.5], dtype=object))
    assert [categories[c] if c >= 0 else None for c in codes] == [1, "a", 1, None, 2.5]


def test_value_hashes_are_pinned():
    # stored profiles keep cells and level hashes: the hash must never change between builds or processes
    from modelpilot.drift._kernels import hash_texts

    got = [int(h) for h in hash_texts(["a", "basic", "é", "x" * 100, ""], 0)]
    assert got == [
        9266097309480679803,
        3829308483099645431,
        17918815676651176423,
        140745123022840600,
        17665956581633026203,
    ]
    assert int(hash_texts(["a"], 1)[0]) == 2460276270458503219
    assert hash_texts(["\ud800"], 0).shape == (1,)  # a lone surrogate hashes instead of raising
