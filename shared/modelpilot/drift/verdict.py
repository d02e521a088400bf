"""Verdicts that don't cry wolf on big samples.

A feature drifts only when its effect size reaches its threshold **and** its
test's p-value (KS for numeric, chi-squared for categorical), corrected for
testing many features at once, is below ``alpha``. Benjamini-Hochberg controls
the false discovery rate (default); Bonferroni the family-wise error rate.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SEVERITIES", "adjust_pvalues", "dataset_severity", "max_severity"]

SEVERITIES = ("none", "warning", "critical")


def adjust_pvalues(pvalues: Sequence[float | None], method: str = "benjamini_hochberg") -> list[float | None]:
    """Return corrected p-values in input order; None entries (no test) are kept and not counted.

    ``benjamini_hochberg``: ``p_(i) · m / i`` made monotone from the largest down;
    ``bonferroni``: ``min(1, p · m)``; ``none``: unchanged.
    """
    present = [(i, p) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out: list[float | None] = [None] * len(pvalues)
    m = len(present)
    if method == "none":
        for i, p in present:
            out[i] = p
        return out
    if method == "bonferroni":
        for i, p in present:
            out[i] = min(1.0, p * m)
        return out
    if method != "benjamini_hochberg":
        raise ValueError(f"unknown correction {method!r}")
    ranked = sorted(present, key=lambda ip: ip[1])
    running = 1.0
    for rank in range(m, 0, -1):
        index, p = ranked[rank - 1]
        running = min(running, p * m / rank)
        out[index] = min(1.0, running)
    return out


def dataset_severity(
    drifted: int, tested: int, critical_drifted: bool, *, warning_share: float, critical_share: float
) -> str:
    """Return none / warning / critical from the share of drifted features and critical features."""
    if drifted == 0 or tested == 0:
        return "none"
    share = drifted / tested
    if critical_drifted or share >= critical_share:
        return "critical"
    if share >= warning_share:
        return "warning"
    return "none"


def max_severity(*levels: str) -> str:
    """Return the most severe of ``levels``."""
    return max(levels, key=SEVERITIES.index)
