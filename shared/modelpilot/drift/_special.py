"""Special functions for p-values, in pure Python (no scipy at run time).

* :func:`kolmogorov_sf` — survival function of the Kolmogorov distribution
  ``Q(λ) = 2 Σ_{k≥1} (-1)^{k-1} exp(-2 k² λ²)``, with the Jacobi-theta form
  ``1 - √(2π)/λ Σ_{k≥1} exp(-(2k-1)² π² / (8 λ²))`` for small ``λ`` where the
  alternating series converges slowly.
* :func:`gammaincc` — the regularised upper incomplete gamma ``Q(a, x)``: the
  power series of ``P`` for ``x < a + 1``, else a modified-Lentz continued
  fraction (Numerical Recipes §6.2); :func:`chi2_sf` is ``Q(k/2, x/2)``.
"""

from __future__ import annotations

import math

__all__ = ["chi2_sf", "gammaincc", "kolmogorov_sf"]

_EPS = 1e-16
_TINY = 1e-300


def kolmogorov_sf(x: float) -> float:
    """Return ``P(K > x)`` for the Kolmogorov distribution (``scipy.stats.kstwobign.sf``)."""
    if not x > 0:
        return 1.0
    if x < 1.18:
        w = math.pi * math.pi / (8.0 * x * x)
        total = 0.0
        for k in range(1, 40):
            term = math.exp(-((2 * k - 1) ** 2) * w)
            total += term
            if term < _EPS * total:
                break
        return min(1.0, max(0.0, 1.0 - math.sqrt(2.0 * math.pi) / x * total))
    total = 0.0
    for k in range(1, 100):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < _EPS * abs(total) or term == 0.0:
            break
    return min(1.0, max(0.0, 2.0 * total))


def gammaincc(a: float, x: float) -> float:
    """Return the regularised upper incomplete gamma function ``Q(a, x)`` for ``a > 0``."""
    if a <= 0:
        raise ValueError("gammaincc needs a > 0")
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        # P(a, x) = e^{-x} x^a / Γ(a+1) Σ x^n / ((a+1)…(a+n))
        term = total = 1.0 / a
        ap = a
        for _ in range(100000):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return min(1.0, max(0.0, 1.0 - total * math.exp(log_prefix)))
    # continued fraction for Q(a, x), modified Lentz
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 100000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return min(1.0, max(0.0, math.exp(log_prefix) * h))


def chi2_sf(statistic: float, dof: int) -> float:
    """Return the chi-squared survival function ``P(χ²_dof > statistic)``."""
    if dof <= 0:
        return 1.0
    return gammaincc(dof / 2.0, statistic / 2.0)
