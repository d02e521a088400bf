"""Drift metrics computed from binned counts, so they work on merged profiles.

Numeric features (reference ``F``, current ``G``):

* **PSI** ``Σ (q - p) ln(q / p)`` on ``coarse_bins`` (default 10) equal-mass
  reference bins, each made of consecutive fine bins; proportions are floored at
  ``1e-4`` so empty bins stay finite.
* **Jensen-Shannon distance** ``sqrt(JS divergence)`` with base-2 logarithms (in
  [0, 1]) and **Hellinger** ``sqrt(1 - Σ sqrt(p q))``, on the same coarse bins.
* **KS** ``D = max |F(e) - G(e)|`` over the fine edges, with the asymptotic
  Kolmogorov p-value ``Q_KS(sqrt(n m / (n + m)) D)``. The exact statistic lies
  in ``[D, D + max_i min(p_i, q_i)]`` (``ks_bound``): between two edges both
  CDFs are monotone, so the gap can grow by at most the smaller of the two bin
  masses. With 1,000 equal-mass reference bins this is at most ~0.001.
* **Wasserstein-1** ``∫ |F - G|``: exact outside the reference range (from the
  tail sums), inside it the integral of ``|F - G|`` interpolated linearly
  within each fine bin; the error is at most ``Σ_i w_i max(p_i, q_i)``
  (``wasserstein_bound``). The *normalized* Wasserstein distance divides by the
  reference's standard deviation (Azure ML's "normalized Wasserstein distance",
  also Evidently's ``wasserstein`` test). Infinite values are left out of it.

Categorical features, over the slots ``[top values..., other, unseen]``: the
chi-squared test of homogeneity (2 x k contingency table, slots empty in both
dropped, p-value from the regularised incomplete gamma), Jensen-Shannon
distance, L-infinity ``max |p - q|`` and PSI.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift._special import chi2_sf, kolmogorov_sf

if TYPE_CHECKING:
    from modelpilot.drift.profile import CategoricalProfile, NumericProfile

__all__ = [
    "PSI_FLOOR",
    "FeatureMetrics",
    "categorical_metrics",
    "coarse_groups",
    "hellinger",
    "jensen_shannon",
    "numeric_metrics",
    "psi",
]

PSI_FLOOR = 1e-4


@dataclass
class FeatureMetrics:
    """The metrics of one feature; None where undefined (no data on one side)."""

    kind: str
    n_reference: int
    n_current: int
    psi: float | None = None
    jensen_shannon: float | None = None
    hellinger: float | None = None
    wasserstein: float | None = None
    wasserstein_norm: float | None = None
    wasserstein_bound: float | None = None
    ks: float | None = None
    ks_pvalue: float | None = None
    ks_bound: float | None = None
    chi2: float | None = None
    chi2_dof: int | None = None
    chi2_pvalue: float | None = None
    linf: float | None = None

    @property
    def pvalue(self) -> float | None:
        """The p-value of the feature's test (KS numeric, chi-squared categorical)."""
        return self.ks_pvalue if self.kind == "numeric" else self.chi2_pvalue

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return asdict(self)


def psi(p: np.ndarray, q: np.ndarray) -> float:
    """Population stability index of proportions ``q`` (current) against ``p`` (reference)."""
    pp = np.maximum(p, PSI_FLOOR)
    qq = np.maximum(q, PSI_FLOOR)
    return float(np.sum((qq - pp) * np.log(qq / pp)))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two probability vectors."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0)
    return math.sqrt(max(0.0, 0.5 * float(kl_p.sum() + kl_q.sum())))


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance of two probability vectors."""
    return math.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q)))))


def coarse_groups(reference_counts: np.ndarray, groups: int) -> np.ndarray:
    """Return the start index of each group of consecutive fine bins holding ~1/groups of the reference."""
    total = reference_counts.sum()
    if total == 0 or groups < 2:
        return np.zeros(1, dtype=np.intp)
    cum = np.cumsum(reference_counts) / total
    cuts = np.searchsorted(cum, np.arange(1, groups) / groups, side="left") + 1
    starts = np.unique(np.concatenate([[0], cuts]))
    return starts[starts < len(reference_counts)]


def numeric_metrics(ref: NumericProfile, cur: NumericProfile, *, coarse_bins: int = 10) -> FeatureMetrics:
    """Compare a current numeric profile with its reference (same edges)."""
    n, m = ref.n, cur.n
    out = FeatureMetrics("numeric", n, m)
    if n == 0 or m == 0:
        return out
    r = ref.counts.astype(np.float64)
    c = cur.counts.astype(np.float64)
    p, q = r / n, c / m
    starts = coarse_groups(ref.counts, coarse_bins)
    pc, qc = np.add.reduceat(p, starts), np.add.reduceat(q, starts)
    out.psi, out.jensen_shannon, out.hellinger = psi(pc, qc), jensen_shannon(pc, qc), hellinger(pc, qc)
    diff = np.cumsum(ref.counts)[:-1] / n - np.cumsum(cur.counts)[:-1] / m  # F - G at every edge (exact counts)
    out.ks = float(np.max(np.abs(diff)))
    out.ks_bound = float(np.max(np.minimum(p, q)))
    en = n * m / (n + m)
    out.ks_pvalue = kolmogorov_sf(math.sqrt(en) * out.ks)
    _wasserstein(ref, cur, out)
    return out


def _wasserstein(ref: NumericProfile, cur: NumericProfile, out: FeatureMetrics) -> None:
    if ref.n_finite == 0 or cur.n_finite == 0:
        return
    r = ref.counts.astype(np.float64)
    c = cur.counts.astype(np.float64)
    r[0] -= ref.neginf
    r[-1] -= ref.posinf
    c[0] -= cur.neginf
    c[-1] -= cur.posinf
    p, q = r / ref.n_finite, c / cur.n_finite
    edges = ref.edges
    d = np.cumsum(r)[:-1] / ref.n_finite - np.cumsum(c)[:-1] / cur.n_finite
    inner = 0.0
    bound = 0.0
    if len(edges) > 1:
        inner = _inner_wasserstein(edges, d, p[1:-1], q[1:-1], _bin_means(ref, edges), _bin_means(cur, edges))
        bound = float(np.sum(np.diff(edges) * np.maximum(p[1:-1], q[1:-1])))
    below = abs(ref.tail_below / ref.n_finite - cur.tail_below / cur.n_finite)
    above = abs(ref.tail_above / ref.n_finite - cur.tail_above / cur.n_finite)
    out.wasserstein = inner + below + above
    out.wasserstein_bound = bound
    std = ref.std
    if std > 0:
        out.wasserstein_norm = out.wasserstein / std
        out.wasserstein_bound = bound / std
    else:
        out.wasserstein_norm = 0.0 if out.wasserstein == 0 else math.inf
        out.wasserstein_bound = 0.0 if bound == 0 else math.inf


def _bin_means(profile: NumericProfile, edges: np.ndarray) -> np.ndarray:
    counts = profile.counts[1:-1]
    assert profile.sums is not None
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(counts > 0, profile.sums[1:-1] / np.maximum(counts, 1), edges[1:])
    return np.clip(means, edges[:-1], edges[1:])


def _inner_wasserstein(
    edges: np.ndarray, d: np.ndarray, p: np.ndarray, q: np.ndarray, mean_p: np.ndarray, mean_q: np.ndarray
) -> float:
    """∫|F - G| over the inner bins, each sample's bin mass placed at its bin mean.

    Exact when the values in each bin sit at one point (discrete data); in
    general within ``Σ w_i max(p_i, q_i)`` of the truth.
    """
    a, b = edges[:-1], edges[1:]
    d0 = d[:-1]  # F - G at each bin's left edge
    p_first = mean_p <= mean_q
    x1 = np.minimum(mean_p, mean_q)
    x2 = np.maximum(mean_p, mean_q)
    middle = np.where(p_first, d0 + p, d0 - q)
    total = np.abs(d0) * (x1 - a) + np.abs(middle) * (x2 - x1) + np.abs(d0 + p - q) * (b - x2)
    return float(np.sum(total))


def categorical_metrics(ref: CategoricalProfile, cur: CategoricalProfile, *, coarse_bins: int = 10) -> FeatureMetrics:
    """Compare a current categorical profile with its reference (same slots)."""
    n, m = ref.n, cur.n
    out = FeatureMetrics("categorical", n, m)
    if n == 0 or m == 0:
        return out
    r = ref.counts.astype(np.float64)
    c = cur.counts.astype(np.float64)
    p, q = r / n, c / m
    out.psi, out.jensen_shannon, out.hellinger = psi(p, q), jensen_shannon(p, q), hellinger(p, q)
    out.linf = float(np.max(np.abs(p - q)))
    used = (r + c) > 0
    table = np.vstack([r[used], c[used]])
    dof = int(used.sum()) - 1
    if dof < 1:
        out.chi2, out.chi2_dof, out.chi2_pvalue = 0.0, 0, 1.0
        return out
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    out.chi2, out.chi2_dof, out.chi2_pvalue = stat, dof, chi2_sf(stat, dof)
    return out
