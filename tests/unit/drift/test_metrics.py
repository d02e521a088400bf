"""Binned metrics against scipy: within the stated bounds; exact mode to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.engine import compare_frames
from modelpilot.drift.frames import Categorical
from modelpilot.drift.metrics import categorical_metrics, coarse_groups, hellinger, jensen_shannon, numeric_metrics
from modelpilot.drift.metrics import psi as psi_of
from modelpilot.policy.drift import DriftPolicy

from .conftest import numeric_pair

RNG = np.random.default_rng(2026)

DISTRIBUTIONS = {
    "normal": (lambda n: RNG.normal(size=n), lambda n: RNG.normal(0.2, 1.1, size=n)),
    "lognormal": (lambda n: RNG.lognormal(size=n), lambda n: RNG.lognormal(0.1, 1.0, size=n)),
    "ties": (lambda n: RNG.integers(0, 12, n).astype(float), lambda n: RNG.integers(1, 12, n).astype(float)),
    "mixture": (
        lambda n: np.where(RNG.random(n) < 0.3, 0.0, RNG.exponential(3.0, n)),
        lambda n: np.where(RNG.random(n) < 0.5, 0.0, RNG.exponential(2.0, n)),
    ),
    "uniform-vs-shifted": (lambda n: RNG.uniform(0, 1, n), lambda n: RNG.uniform(0.5, 1.5, n)),
}


@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
@pytest.mark.parametrize("sizes", [(20_000, 5_000), (3_000, 40_000), (50, 7)])
def test_binned_ks_and_wasserstein_within_stated_bounds(name, sizes):
    make_ref, make_cur = DISTRIBUTIONS[name]
    a, b = make_ref(sizes[0]), make_cur(sizes[1])
    ref, cur = numeric_pair(a, b)
    m = numeric_metrics(ref, cur)
    exact_ks = stats.ks_2samp(a, b, method="asymp").statistic
    assert m.ks <= exact_ks + 1e-12
    assert exact_ks - m.ks <= m.ks_bound + 1e-12
    exact_w = stats.wasserstein_distance(a, b)
    assert abs(m.wasserstein - exact_w) <= m.wasserstein_bound * ref.std + 1e-9 * max(1.0, exact_w)
    assert m.wasserstein_norm == pytest.approx(m.wasserstein / np.std(a), rel=1e-9)


def test_default_bins_bound_is_one_thousandth_for_continuous_reference():
    a, b = RNG.normal(size=100_000), RNG.normal(0.05, 1.0, size=100_000)
    ref, cur = numeric_pair(a, b)
    m = numeric_metrics(ref, cur)
    assert len(ref.edges) == 1001
    assert m.ks_bound <= 1.0 / 1000 + 1e-9
    exact_ks = stats.ks_2samp(a, b, method="asymp").statistic
    assert abs(m.ks - exact_ks) <= 1.0 / 1000


def test_discrete_data_is_exact_in_binned_mode():
    a = RNG.poisson(1.5, 20_000).astype(float)
    b = RNG.poisson(2.7, 8_000).astype(float)
    m = numeric_metrics(*numeric_pair(a, b))
    assert m.ks == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert m.wasserstein == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_ks_pvalue_is_the_asymptotic_kolmogorov_one():
    a, b = RNG.normal(size=4000), RNG.normal(0.05, 1, size=3000)
    m = numeric_metrics(*numeric_pair(a, b))
    assert m.ks_pvalue == pytest.approx(stats.kstwobign.sf(math.sqrt(4000 * 3000 / 7000) * m.ks), abs=1e-12)
    # and close to scipy's own asymptotic two-sample p-value
    assert m.ks_pvalue == pytest.approx(stats.ks_2samp(a, b, method="asymp").pvalue, abs=0.05)


ADVERSARIAL = {
    "random": (RNG.normal(size=3000), RNG.normal(0.3, 2.0, size=2500)),
    "ties": (RNG.integers(0, 3, 4000).astype(float), RNG.integers(0, 4, 1000).astype(float)),
    "constant-same": (np.full(500, 7.0), np.full(300, 7.0)),
    "constant-different": (np.full(500, 7.0), np.full(300, 9.5)),
    "constant-reference": (np.full(500, 7.0), RNG.normal(7.0, 1.0, 300)),
    "single-row": (RNG.normal(size=1000), np.array([0.25])),
    "single-row-reference": (np.array([1.5]), RNG.normal(size=200)),
    "nan-and-inf": (
        np.r_[RNG.normal(size=1000), [np.nan] * 50, [np.inf] * 3, [-np.inf] * 2],
        np.r_[RNG.normal(0.5, 1, size=900), [np.nan] * 10, [np.inf] * 20],
    ),
    "huge": (RNG.normal(size=2000) * 1e150, RNG.normal(0.1, 1, size=1500) * 1e150),
    "tiny": (RNG.normal(size=2000) * 1e-200, RNG.normal(size=1500) * 1e-200),
}


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_exact_mode_matches_scipy(name):
    a, b = ADVERSARIAL[name]
    report = compare_frames({"x": a}, {"x": b}, exact=True)
    m = report.feature("x")["metrics"]
    a_ok, b_ok = a[~np.isnan(a)], b[~np.isnan(b)]
    ks = stats.ks_2samp(a_ok, b_ok, method="asymp")
    assert m["ks"] == pytest.approx(ks.statistic, abs=1e-9)
    en = len(a_ok) * len(b_ok) / (len(a_ok) + len(b_ok))
    assert m["ks_pvalue"] == pytest.approx(stats.kstwobign.sf(math.sqrt(en) * ks.statistic), abs=1e-9)
    w = stats.wasserstein_distance(a[np.isfinite(a)], b[np.isfinite(b)])
    assert m["wasserstein"] == pytest.approx(w, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_binned_mode_survives_adversarial_data(name):
    a, b = ADVERSARIAL[name]
    ref, cur = numeric_pair(a, b)
    m = numeric_metrics(ref, cur)
    a_ok, b_ok = a[~np.isnan(a)], b[~np.isnan(b)]
    exact_ks = stats.ks_2samp(a_ok, b_ok).statistic
    assert -1e-12 <= exact_ks - m.ks <= m.ks_bound + 1e-12
    w = stats.wasserstein_distance(a[np.isfinite(a)], b[np.isfinite(b)])
    assert abs(m.wasserstein - w) <= (m.wasserstein_bound or 0.0) * (ref.std or 1.0) + 1e-9 * max(abs(w), 1e-300)
    for value in (m.psi, m.jensen_shannon, m.hellinger):
        assert value is not None and math.isfinite(value) and value >= 0


def test_constant_reference_normalized_wasserstein_is_zero_or_infinite():
    same = numeric_metrics(*numeric_pair(np.full(100, 3.0), np.full(50, 3.0)))
    moved = numeric_metrics(*numeric_pair(np.full(100, 3.0), np.full(50, 4.0)))
    assert same.wasserstein_norm == 0.0 and same.ks == 0.0
    assert moved.wasserstein == pytest.approx(1.0) and moved.wasserstein_norm == math.inf and moved.ks == 1.0


def test_all_missing_current_has_no_metrics():
    m = numeric_metrics(*numeric_pair(RNG.normal(size=100), np.full(40, np.nan)))
    assert m.n_current == 0
    assert m.ks is None and m.wasserstein is None and m.psi is None


def test_psi_js_hellinger_use_equal_mass_reference_groups():
    a, b = RNG.gamma(2.0, 3.0, 30_000), RNG.gamma(2.4, 3.0, 10_000)
    ref, cur = numeric_pair(a, b)
    m = numeric_metrics(ref, cur, coarse_bins=10)
    starts = coarse_groups(ref.counts, 10)
    bounds = ref.edges[starts[1:] - 1]  # upper edge of each group but the last
    p = np.bincount(np.searchsorted(bounds, a, side="left"), minlength=len(bounds) + 1) / len(a)
    q = np.bincount(np.searchsorted(bounds, b, side="left"), minlength=len(bounds) + 1) / len(b)
    assert np.all(np.abs(p - 0.1) < 0.002)  # equal mass
    assert m.psi == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-9)
    assert m.jensen_shannon == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
    assert m.hellinger == pytest.approx(math.sqrt(1 - np.sum(np.sqrt(p * q))), rel=1e-9)


def test_distance_helpers():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.0, 0.5, 0.5])
    assert jensen_shannon(p, p) == 0.0
    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    assert jensen_shannon(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)
    assert hellinger(np.array([1.0, 0]), np.array([0, 1.0])) == pytest.approx(1.0)
    assert psi_of(p, q) == pytest.approx(2 * (0.5 - 1e-4) * math.log(0.5 / 1e-4))


def test_categorical_metrics_match_scipy():
    cats = ["a", "b", "c", "d"]
    ref = build_reference({"c": Categorical(RNG.choice(4, 5000, p=[0.4, 0.3, 0.2, 0.1]), cats)}, top_k=3)
    cur_values = np.array(RNG.choice(["a", "b", "c", "d", "zz"], 2000, p=[0.3, 0.3, 0.2, 0.1, 0.1]), dtype=object)
    cur = ProfileAccumulator(ref).add_all({"c": cur_values})
    r, c = ref.features["c"], cur.features["c"]
    m = categorical_metrics(r, c)  # type: ignore[arg-type]
    assert r.values == ["a", "b", "c"] and c.unseen > 150
    table = np.vstack([r.counts, c.counts])
    used = table.sum(axis=0) > 0
    chi2, pvalue, dof, _ = stats.chi2_contingency(table[:, used], correction=False)
    assert m.chi2 == pytest.approx(chi2, rel=1e-9) and m.chi2_dof == dof
    assert m.chi2_pvalue == pytest.approx(pvalue, rel=1e-6, abs=1e-300)
    p, q = r.counts / r.n, c.counts / c.n
    assert m.jensen_shannon == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
    assert m.linf == pytest.approx(np.max(np.abs(p - q)))
    assert m.psi == pytest.approx(psi_of(p, q))


def test_policy_psi_bins_is_configurable():
    a, b = RNG.normal(size=20_000), RNG.normal(0.3, 1, size=20_000)
    ten = compare_frames({"x": a}, {"x": b}).feature("x")["metrics"]["psi"]
    twenty = compare_frames({"x": a}, {"x": b}, policy=DriftPolicy(psi_bins=20)).feature("x")["metrics"]["psi"]
    assert ten != twenty and ten > 0.05 and twenty > 0.05
