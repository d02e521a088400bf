"""Exact ROC AUC from blocks of rows given in ascending score order.

``AUC = Σ_v w⁺(v) · (W⁻(< v) + ½ w⁻(v)) / (W⁺ W⁻)``: each positive weight counts the negative weight below
its score, and one half of the negative weight tied with it. With weights 0/1 this is the Mann-Whitney
statistic, equal to scikit-learn's ``roc_auc_score`` (ties included); with the calibrated probabilities
``p`` and ``1 - p`` as weights it is the expected ROC AUC that confidence-based estimation reports.

Blocks must cover disjoint, ascending score ranges (equal scores in one block): :func:`score_bucket`
gives every score its range, so rows spilled by bucket and read back bucket after bucket satisfy that in
memory bounded by one bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SCORE_BUCKETS", "AucAccumulator", "roc_auc", "score_bucket"]

#: buckets per unit of the transformed score (probabilities use the middle third)
SCORE_BUCKETS = 128


def score_bucket(scores: np.ndarray, per_unit: int = SCORE_BUCKETS) -> np.ndarray:
    """Return each score's bucket in ``[0, 3 * per_unit)``: non-decreasing in the score.

    Scores in [0, 1] (probabilities) are cut into ``per_unit`` equal buckets; scores below 0 or above 1
    (decision functions, logits) are compressed with ``atan`` into a unit on either side.
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.where(
        s < 0.0, -np.arctan(-s) / (math.pi / 2), np.where(s > 1.0, 1.0 + np.arctan(s - 1.0) / (math.pi / 2), s)
    )
    b = np.floor((t + 1.0) * per_unit).astype(np.int64)
    return np.clip(b, 0, 3 * per_unit - 1)


@dataclass
class AucAccumulator:
    """Tie-aware weighted ROC AUC over score-ordered blocks."""

    negative_below: float = 0.0
    numerator: float = 0.0
    positive: float = 0.0
    negative: float = 0.0
    last_score: float = -math.inf

    def add_block(self, scores: np.ndarray, w_pos: np.ndarray, w_neg: np.ndarray) -> None:
        """Add rows whose scores all lie above every score of the earlier blocks."""
        scores = np.asarray(scores, dtype=np.float64)
        if not len(scores):
            return
        order = np.argsort(scores, kind="stable")
        s = scores[order]
        if s[0] <= self.last_score:
            raise ValueError("AUC blocks must come in ascending, disjoint score ranges")
        values_start = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
        pos_v = np.add.reduceat(np.asarray(w_pos, dtype=np.float64)[order], values_start)
        neg_v = np.add.reduceat(np.asarray(w_neg, dtype=np.float64)[order], values_start)
        below = self.negative_below + np.concatenate(([0.0], np.cumsum(neg_v)[:-1]))
        self.numerator += float((pos_v * (below + 0.5 * neg_v)).sum())
        self.negative_below += float(neg_v.sum())
        self.positive += float(pos_v.sum())
        self.negative += float(neg_v.sum())
        self.last_score = float(s[-1])

    def value(self) -> float | None:
        """The AUC, or None when either class has no weight (one class only, or no rows)."""
        if self.positive <= 0 or self.negative <= 0:
            return None
        return self.numerator / (self.positive * self.negative)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC of in-memory ``scores`` against boolean ``positive`` labels (None with one class only)."""
    acc = AucAccumulator()
    is_pos = np.asarray(positive, dtype=bool)
    acc.add_block(np.asarray(scores, dtype=np.float64), is_pos.astype(np.float64), (~is_pos).astype(np.float64))
    return acc.value()
