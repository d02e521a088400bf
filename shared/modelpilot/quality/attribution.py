"""Feature-attribution drift: the mean |attribution| ranking of a window against the reference's, by NDCG.

The definition of SageMaker Clarify's feature-attribution drift monitor (and Azure ML's feature-attribution
drift signal): with ``F(x)`` the reference's global attribution of feature ``x``, ``x_i`` the feature ranked
``i``-th in the window and ``x'_i`` the one ranked ``i``-th in the reference,

    DCG  = Σ_{i=1..n} F(x_i)  / log2(i + 1)
    iDCG = Σ_{i=1..n} F(x'_i) / log2(i + 1)
    NDCG = DCG / iDCG

so NDCG is 1 when the window ranks the features as the reference does, and drops most when the features the
reference found important fall down the ranking. Clarify alerts below 0.9. ``top_k`` limits ``n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AttributionAccumulator", "ndcg", "rank_changes", "ranking"]


@dataclass
class AttributionAccumulator:
    """Sums of |attribution| and counts per feature (missing values skipped)."""

    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, feature: str, values: np.ndarray) -> None:
        """Add one chunk's attributions of ``feature``."""
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        self.sums[feature] = self.sums.get(feature, 0.0) + float(np.abs(v).sum())
        self.counts[feature] = self.counts.get(feature, 0) + len(v)

    def merge(self, other: AttributionAccumulator) -> None:
        """Add another accumulator's sums."""
        for name, total in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + total
            self.counts[name] = self.counts.get(name, 0) + other.counts.get(name, 0)

    @property
    def rows(self) -> int:
        """The most rows any feature had an attribution for."""
        return max(self.counts.values(), default=0)

    def importances(self) -> dict[str, float]:
        """Mean |attribution| per feature that had at least one value."""
        return {name: self.sums[name] / n for name, n in self.counts.items() if n}


def ranking(importances: dict[str, float]) -> list[str]:
    """Features by decreasing importance (ties by name, so the order is stable)."""
    return [name for name, _ in sorted(importances.items(), key=lambda kv: (-kv[1], kv[0]))]


def ndcg(reference: dict[str, float], current: dict[str, float], top_k: int | None = None) -> float | None:
    """NDCG of ``current``'s ranking, with ``reference``'s importances as the gains (Clarify's definition).

    Features missing from ``current`` rank last (in reference order); features absent from the reference
    gain nothing. None when the reference has no positive importance.
    """
    ideal_order = ranking(reference)
    live = [f for f in ranking(current) if f in reference]
    live += [f for f in ideal_order if f not in live]
    n = len(ideal_order) if top_k is None else min(top_k, len(ideal_order))
    discounts = [1.0 / math.log2(i + 2) for i in range(n)]
    ideal = sum(reference[f] * d for f, d in zip(ideal_order[:n], discounts, strict=True))
    if ideal <= 0:
        return None
    gain = sum(reference[f] * d for f, d in zip(live[:n], discounts, strict=True))
    return gain / ideal


def rank_changes(reference: dict[str, float], current: dict[str, float]) -> list[dict[str, Any]]:
    """Per feature: both ranks (1 = most important), both importances and the change, biggest movers first."""
    ref_rank = {f: i + 1 for i, f in enumerate(ranking(reference))}
    cur_rank = {f: i + 1 for i, f in enumerate(ranking(current))}
    rows: list[dict[str, Any]] = []
    for name in sorted(set(reference) | set(current)):
        before, after = reference.get(name), current.get(name)
        rows.append(
            {
                "feature": name,
                "reference_rank": ref_rank.get(name),
                "current_rank": cur_rank.get(name),
                "reference_importance": before,
                "current_importance": after,
                "change": None if before is None or after is None else after - before,
                "rank_change": None
                if name not in ref_rank or name not in cur_rank
                else ref_rank[name] - cur_rank[name],
            }
        )
    rows.sort(key=lambda r: (-abs(r["rank_change"] or 0), -abs(r["change"] or 0.0), r["feature"]))
    return rows
