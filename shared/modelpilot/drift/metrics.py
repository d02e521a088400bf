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

Categorical features: Jensen-Shannon distance, L-infinity ``max |p - q|`` and
PSI over the slots ``[top values..., other slots..., unseen]``, and the
chi-squared test of homogeneity (:func:`homogeneity_test`) on the profile's
hashed test cells. The cells are chosen by a hash of each value, never by the
reference's counts, and every value (top, other or unseen) lands in one, so
identical distributions give calibrated p-values whatever the cardinality.
Cells whose expected count in the smaller sample is below 5 are pooled with
their neighbours (in cell order, a rule that looks only at the column totals,
which the test conditions on); when pooling leaves fewer than two columns, a
Monte Carlo permutation test (exact conditional test, 999 draws, seeded by the
table) gives the p-value instead.
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
    "MIN_EXPECTED",
    "PERMUTATIONS",
    "PERMUTATION_COLUMNS",
    "PSI_FLOOR",
    "FeatureMetrics",
    "categorical_metrics",
    "coarse_groups",
    "hellinger",
    "homogeneity_test",
    "jensen_shannon",
    "numeric_metrics",
    "psi",
]

PSI_FLOOR = 1e-4
#: pooled cells reach this expected count in the smaller sample (Cochran's rule)
MIN_EXPECTED = 5.0
PERMUTATIONS = 999
#: the permutation test runs on at most this many columns (blocks of consecutive cells)
PERMUTATION_COLUMNS = 64


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
    chi2_test: str | None = None
    chi2_cells: int | None = None
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
    if ref.cells is not None and cur.cells is not None:
        stat, dof, pvalue, how, cells = homogeneity_test(ref.cells, cur.cells)
    else:  # a version-1 profile: no test cells, the slots are all there is
        stat, dof, pvalue, how, cells = homogeneity_test(ref.counts, cur.counts)
        how += " (slots: rebuild the reference profile for a calibrated test)"
    out.chi2, out.chi2_dof, out.chi2_pvalue, out.chi2_test, out.chi2_cells = stat, dof, pvalue, how, cells
    return out


def homogeneity_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, int, float, str, int]:
    """Chi-squared test that two count vectors come from one distribution.

    Columns empty in both are dropped. Columns whose expected count in the smaller sample is
    below :data:`MIN_EXPECTED` are pooled with their neighbours in index order until each pool
    reaches it (a last short pool joins the one before). The statistic is Pearson's on the pooled
    2 x k table, the p-value ``Q((k-1)/2, χ²/2)``. When fewer than two columns remain but the raw
    table has two or more, the p-value comes from :data:`PERMUTATIONS` draws of the current
    counts from the multivariate hypergeometric distribution given the column totals (on at
    most :data:`PERMUTATION_COLUMNS` blocks of consecutive columns).

    Returns ``(statistic, dof, p-value, method, columns tested)``.
    """
    r = np.asarray(reference, dtype=np.int64)
    c = np.asarray(current, dtype=np.int64)
    used = np.flatnonzero((r + c) > 0)
    r, c = r[used], c[used]
    n, m = int(r.sum()), int(c.sum())
    if len(used) < 2 or n == 0 or m == 0:
        return 0.0, 0, 1.0, "chi2", len(used)
    totals = r + c
    share = min(n, m) / (n + m)
    pooled_r, pooled_c = _pool(r, c, totals * share)
    if len(pooled_r) >= 2:
        stat = _pearson(pooled_r.astype(np.float64), pooled_c.astype(np.float64))
        dof = len(pooled_r) - 1
        how = "chi2" if len(pooled_r) == len(r) else "chi2, small cells pooled"
        return stat, dof, chi2_sf(stat, dof), how, len(pooled_r)
    if len(r) > PERMUTATION_COLUMNS:  # consecutive columns in blocks: a rule that ignores the counts, and fast
        blocks = np.arange(len(r)) * PERMUTATION_COLUMNS // len(r)
        r, c = np.bincount(blocks, weights=r).astype(np.int64), np.bincount(blocks, weights=c).astype(np.int64)
    stat = _pearson(r.astype(np.float64), c.astype(np.float64))
    return stat, len(r) - 1, _permutation_pvalue(r, c, stat), "permutation", len(r)


def _pool(r: np.ndarray, c: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    small = expected < MIN_EXPECTED
    if not small.any():
        return r, c
    groups = np.empty(len(r), dtype=np.intp)
    big = np.flatnonzero(~small)
    groups[big] = np.arange(len(big))
    next_id, open_id, running = len(big), -1, 0.0
    for i in np.flatnonzero(small).tolist():  # in column order, small columns fill one pool at a time
        if open_id < 0 or running >= MIN_EXPECTED:
            open_id, next_id, running = next_id, next_id + 1, 0.0
        groups[i] = open_id
        running += float(expected[i])
    pooled_r = np.bincount(groups, weights=r).astype(np.int64)
    pooled_c = np.bincount(groups, weights=c).astype(np.int64)
    if running < MIN_EXPECTED and next_id > 1:  # the last pool is short: it joins the smallest other column
        pooled_e = np.bincount(groups, weights=expected)
        pooled_e[open_id] = np.inf
        j = int(np.argmin(pooled_e))
        pooled_r[j] += pooled_r[open_id]
        pooled_c[j] += pooled_c[open_id]
        pooled_r, pooled_c = np.delete(pooled_r, open_id), np.delete(pooled_c, open_id)
    return pooled_r, pooled_c


def _pearson(r: np.ndarray, c: np.ndarray) -> float:
    n, m = r.sum(), c.sum()
    total = r + c
    er, ec = total * (n / (n + m)), total * (m / (n + m))
    return float(np.sum((r - er) ** 2 / er) + np.sum((c - ec) ** 2 / ec))


def _permutation_pvalue(r: np.ndarray, c: np.ndarray, observed: float) -> float:
    import zlib

    totals = r + c
    m = int(c.sum())
    seed = zlib.crc32(r.tobytes() + c.tobytes())
    draws = np.random.default_rng(seed).multivariate_hypergeometric(totals, m, size=PERMUTATIONS)
    n, big_n = float(r.sum()), float(totals.sum())
    ec = totals * (m / big_n)
    er = totals * (n / big_n)
    drawn = draws.astype(np.float64)
    stats = np.sum((drawn - ec) ** 2 / ec, axis=1) + np.sum((totals - drawn - er) ** 2 / er, axis=1)
    exceed = int(np.count_nonzero(stats >= observed * (1 - 1e-12)))
    return (1 + exceed) / (PERMUTATIONS + 1)
