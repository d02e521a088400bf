"""Moments stay right at any scale, and profiles still merge by addition.

The variance behind the normalized Wasserstein distance (``W1 / std_ref``) used to overflow beyond
~1e155 and underflow below ~1e-160 (std 0, so ``W1 / std = inf`` passed any effect threshold). These
tests check the std against numpy on rescaled data, the effect floor at extreme scales, and that merged
chunk moments equal one-pass moments to 1e-12 relative (the contract fan-out merging relies on).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.engine import compare_frames
from modelpilot.drift.frames import Chunk
from modelpilot.drift.profile import NumericProfile, Profile

from .conftest import numeric_pair

RNG = np.random.default_rng(1234)
SCALES = [1e-300, 1e-200, 1e-160, 1e-100, 1.0, 1e100, 1e155, 1e200, 1e300]


def true_std(x: np.ndarray, scale: float) -> float:
    return float(np.std(x / scale)) * scale


@pytest.mark.parametrize("scale", SCALES)
def test_reference_std_is_right_at_every_scale(scale):
    base = RNG.normal(3.0, 1.0, 20_000)
    x = base * scale
    ref = build_reference({"x": x}).features["x"]
    assert isinstance(ref, NumericProfile)
    assert ref.std == pytest.approx(true_std(x, scale), rel=1e-12, abs=0)
    assert ref.mean == pytest.approx(float(np.mean(base)) * scale, rel=1e-12, abs=0)


@pytest.mark.parametrize("scale", SCALES)
def test_the_effect_floor_holds_at_every_scale(scale):
    a = RNG.normal(0.0, 1.0, 200_000) * scale
    b = (RNG.normal(0.0, 1.0, 200_000) + 0.03) * scale  # significant in 200k rows, but a tiny effect
    item = compare_frames({"x": a}, {"x": b}).feature("x")
    assert item["pvalue"] < 1e-6
    assert math.isfinite(item["effect"]) and item["effect"] == pytest.approx(0.03, abs=0.01)
    assert not item["drifted"]


def test_one_huge_outlier_in_the_reference_keeps_sigma_finite():
    a = np.append(RNG.normal(size=10_000), 1e300)
    ref, _ = numeric_pair(a, RNG.normal(size=5_000))
    assert math.isfinite(ref.std) and ref.std == pytest.approx(1e300 * math.sqrt(10_000) / 10_001, rel=1e-9, abs=0)
    item = compare_frames({"x": a}, {"x": RNG.normal(size=5_000)}).feature("x")
    assert math.isfinite(item["effect"]) and not item["drifted"]


@pytest.mark.parametrize("scale", [1e-250, 1e-160, 1.0, 1e160, 1e250])
def test_merged_moments_equal_one_pass_moments(scale):
    x = RNG.normal(5.0, 2.0, 30_000) * scale
    ref = build_reference({"x": RNG.normal(5.0, 2.0, 1000) * scale}, bins=50)
    whole = ProfileAccumulator(ref).add_all([Chunk({"x": x}, len(x))]).features["x"]
    cuts = [0, 1, 7, 4000, 4001, 20_000, 30_000]
    parts = [
        ProfileAccumulator(ref).add_all([Chunk({"x": x[s:e]}, e - s)]) for s, e in zip(cuts, cuts[1:], strict=False)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    got = merged.features["x"]
    assert isinstance(got, NumericProfile) and isinstance(whole, NumericProfile)
    assert got.n_finite == whole.n_finite == len(x)
    assert got.mean == pytest.approx(whole.mean, rel=1e-12, abs=0)
    assert got.std == pytest.approx(whole.std, rel=1e-12, abs=0)
    assert whole.std == pytest.approx(true_std(x, scale), rel=1e-12, abs=0)


def test_merging_chunks_of_wildly_different_scales_keeps_the_small_spread():
    tiny = RNG.normal(0.0, 1.0, 1000) * 1e-200
    zeros = np.zeros(10)
    ref = build_reference({"x": np.append(tiny, zeros)}, bins=20)
    a = ProfileAccumulator(ref).add_all({"x": zeros})
    b = ProfileAccumulator(ref).add_all({"x": tiny})
    both = np.append(zeros, tiny)
    for merged in (a.merge(b), b.merge(a)):
        feature = merged.features["x"]
        assert isinstance(feature, NumericProfile)
        assert feature.std == pytest.approx(true_std(both, 1e-200), rel=1e-12, abs=0)


def test_scaled_moments_round_trip_through_json():
    x = RNG.normal(size=1000) * 1e-200
    profile = build_reference({"x": x})
    again = Profile.from_json(profile.to_json()).features["x"]
    assert isinstance(again, NumericProfile)
    assert again.std == profile.features["x"].std  # type: ignore[union-attr]
