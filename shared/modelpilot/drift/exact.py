"""Exact two-sample KS and Wasserstein-1 on raw values, for data that fits in memory.

Same definitions as ``scipy.stats.ks_2samp`` (statistic) and
``scipy.stats.wasserstein_distance``; the binned metrics in
:mod:`modelpilot.drift.metrics` approximate these within their stated bounds.
NaN values are dropped; the Wasserstein distance also drops ±inf.
"""

from __future__ import annotations

import math

import numpy as np

from modelpilot.drift._special import kolmogorov_sf

__all__ = ["ks_exact", "wasserstein_exact"]


def ks_exact(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Return ``(D, asymptotic p-value)`` of the two-sample Kolmogorov-Smirnov test."""
    a = np.sort(reference[~np.isnan(reference)])
    b = np.sort(current[~np.isnan(current)])
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan
    both = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, both, side="right") / len(a)
    cdf_b = np.searchsorted(b, both, side="right") / len(b)
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    en = len(a) * len(b) / (len(a) + len(b))
    return d, kolmogorov_sf(math.sqrt(en) * d)


def wasserstein_exact(reference: np.ndarray, current: np.ndarray) -> float:
    """Return the Wasserstein-1 distance ``∫ |F - G|`` of the finite values."""
    a = np.sort(reference[np.isfinite(reference)])
    b = np.sort(current[np.isfinite(current)])
    if len(a) == 0 or len(b) == 0:
        return math.nan
    both = np.sort(np.concatenate([a, b]))
    deltas = np.diff(both)
    cdf_a = np.searchsorted(a, both[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, both[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * deltas))
