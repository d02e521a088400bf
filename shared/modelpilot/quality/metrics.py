"""Realised metrics from labelled predictions, accumulated chunk by chunk (scikit-learn's definitions).

Classifiers: accuracy, precision, recall and F1 (of the positive class for a binary model, macro-averaged over
the classes seen for a multiclass one), log loss and the expected calibration error of the positive-class score.
Regressors: MAE, RMSE and MAPE. ROC AUC needs the scores in order: see :mod:`modelpilot.quality.auc`.

A metric that is not defined for the rows seen (precision with no predicted positive, recall with no actual
positive, anything of an empty window) is ``None``, never a made-up 0. Accumulators merge by addition, so
partitions, files or workers can be summed in any order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "CALIBRATION_BINS",
    "ClassIndex",
    "ClassificationAccumulator",
    "RegressionAccumulator",
    "calibration_bin",
    "label_text",
]

CALIBRATION_BINS = 10
_EPS = float(np.finfo(np.float64).eps)


def label_text(value: Any) -> str | None:
    """Return a label or predicted class as text: ``1.0`` and ``1`` and ``True`` are all ``"1"``; missing is None."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return "1" if value else "0"
    if isinstance(value, float | np.floating):
        if value != value:
            return None
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    text = str(value).strip()
    return text if text and text not in {"nan", "NaN", "NA", "N/A", "null", "NULL", "None"} else None


class ClassIndex:
    """Class labels as small integer codes, in first-seen order (the codes of every accumulator of a batch)."""

    def __init__(self, classes: list[str] | None = None) -> None:
        self.classes: list[str] = []
        self._codes: dict[str, int] = {}
        for name in classes or []:
            self.code(name)

    def code(self, text: str) -> int:
        """Return the code of ``text``, adding it when new."""
        found = self._codes.get(text)
        if found is None:
            found = self._codes[text] = len(self.classes)
            self.classes.append(text)
        return found

    def encode(self, values: Any) -> np.ndarray:
        """Return the codes of ``values`` (any array of labels); -1 where a value is missing."""
        arr = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
        if arr.dtype.kind == "f":
            out = np.full(len(arr), -1, dtype=np.int64)
            present = ~np.isnan(arr)
            uniques, inverse = np.unique(arr[present], return_inverse=True)
            table = np.asarray([self.code(label_text(float(u)) or "") for u in uniques], dtype=np.int64)
            out[present] = table[inverse] if len(uniques) else out[present]
            return out
        uniques_map: dict[Any, int] = {}
        out = np.empty(len(arr), dtype=np.int64)
        for i, value in enumerate(arr.tolist()):
            code = uniques_map.get(value)
            if code is None:
                text = label_text(value)
                code = uniques_map[value] = -1 if text is None else self.code(text)
            out[i] = code
        return out

    def __len__(self) -> int:
        return len(self.classes)


def calibration_bin(scores: np.ndarray, bins: int = CALIBRATION_BINS) -> np.ndarray:
    """Return each score's bin among ``bins`` equal-width bins of [0, 1]: scikit-learn's ``calibration_curve``
    binning (``searchsorted`` on the inner edges, so an edge value falls in the bin below it)."""
    inner = np.linspace(0.0, 1.0, bins + 1)[1:-1]
    return np.searchsorted(inner, scores, side="left")


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


@dataclass
class ClassificationAccumulator:
    """Confusion counts, log loss and calibration of labelled classifier predictions.

    ``positive`` is the code of the positive class of a binary model (None for multiclass). ``scores`` are the
    positive-class probabilities; the log loss and the calibration error are defined only while every score
    seen lies in [0, 1].
    """

    positive: int | None = None
    bins: int = CALIBRATION_BINS
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int64))
    scored: int = 0
    log_loss_sum: float = 0.0
    probabilities: bool = True
    bin_count: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bin_score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bin_positive: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        if len(self.bin_count) != self.bins:
            self.bin_count = np.zeros(self.bins, dtype=np.int64)
            self.bin_score = np.zeros(self.bins)
            self.bin_positive = np.zeros(self.bins)

    def _grow(self, size: int) -> None:
        if size > len(self.matrix):
            grown = np.zeros((size, size), dtype=np.int64)
            grown[: len(self.matrix), : len(self.matrix)] = self.matrix
            self.matrix = grown

    def add(self, true: np.ndarray, predicted: np.ndarray, scores: np.ndarray | None = None) -> None:
        """Add rows: class codes of the labels and of the predictions (both >= 0), and positive-class scores
        (rows whose score is NaN count in the confusion matrix only)."""
        true = np.asarray(true, dtype=np.int64)
        predicted = np.asarray(predicted, dtype=np.int64)
        if not len(true):
            return
        self._grow(int(max(true.max(), predicted.max(), self.positive or 0)) + 1)
        size = len(self.matrix)
        self.matrix += np.bincount(true * size + predicted, minlength=size * size).reshape(size, size)
        if scores is None or self.positive is None:
            return
        scores = np.asarray(scores, dtype=np.float64)
        usable = ~np.isnan(scores)
        scores, is_pos = scores[usable], (true == self.positive)[usable]
        if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
            self.probabilities = False
        p = np.clip(scores, _EPS, 1 - _EPS)
        q = np.clip(1.0 - scores, _EPS, 1 - _EPS)
        self.log_loss_sum += float(-(np.log(p[is_pos]).sum() + np.log(q[~is_pos]).sum()))
        self.scored += len(scores)
        b = calibration_bin(scores, self.bins)
        b = np.clip(b, 0, self.bins - 1)
        self.bin_count += np.bincount(b, minlength=self.bins)
        self.bin_score += np.bincount(b, weights=scores, minlength=self.bins)
        self.bin_positive += np.bincount(b, weights=is_pos.astype(np.float64), minlength=self.bins)

    def merge(self, other: ClassificationAccumulator) -> None:
        """Add another accumulator's counts (same class codes and bins)."""
        self._grow(len(other.matrix))
        n = len(other.matrix)
        self.matrix[:n, :n] += other.matrix
        self.scored += other.scored
        self.log_loss_sum += other.log_loss_sum
        self.probabilities = self.probabilities and other.probabilities
        self.bin_count += other.bin_count
        self.bin_score += other.bin_score
        self.bin_positive += other.bin_positive

    @property
    def rows(self) -> int:
        """Labelled rows seen."""
        return int(self.matrix.sum())

    @property
    def correct(self) -> int:
        """Rows whose predicted class is the label."""
        return int(np.trace(self.matrix))

    def calibration_error(self) -> float | None:
        """Expected calibration error: ``Σ n_b / n |mean(y)_b - mean(p)_b|`` over the score bins."""
        if not self.scored or not self.probabilities:
            return None
        full = self.bin_count > 0
        gap = np.abs(self.bin_positive[full] - self.bin_score[full])
        return float(gap.sum() / self.scored)

    def calibration_curve(self) -> list[dict[str, float]]:
        """Per non-empty bin: the mean score, the share of positives and the row count."""
        if not self.scored or not self.probabilities:
            return []
        edges = np.linspace(0.0, 1.0, self.bins + 1)
        return [
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "mean_score": float(self.bin_score[b] / self.bin_count[b]),
                "positive_rate": float(self.bin_positive[b] / self.bin_count[b]),
                "rows": int(self.bin_count[b]),
            }
            for b in range(self.bins)
            if self.bin_count[b]
        ]

    def metrics(self) -> dict[str, float | None]:
        """Return accuracy, precision, recall, F1, log loss and calibration error (None where undefined)."""
        n = self.rows
        out: dict[str, float | None] = {"accuracy": _ratio(self.correct, n)}
        m = self.matrix
        if self.positive is not None:
            size = len(m)
            k = self.positive
            tp = float(m[k, k]) if k < size else 0.0
            predicted_pos = float(m[:, k].sum()) if k < size else 0.0
            actual_pos = float(m[k, :].sum()) if k < size else 0.0
            out["precision"] = _ratio(tp, predicted_pos)
            out["recall"] = _ratio(tp, actual_pos)
            out["f1"] = _ratio(2 * tp, predicted_pos + actual_pos)
            out["log_loss"] = self.log_loss_sum / self.scored if self.scored and self.probabilities else None
            out["calibration_error"] = self.calibration_error()
        else:
            seen = (m.sum(axis=0) + m.sum(axis=1)) > 0
            diag = np.diag(m).astype(np.float64)
            per_precision = [_ratio(diag[c], float(m[:, c].sum())) for c in np.flatnonzero(seen)]
            per_recall = [_ratio(diag[c], float(m[c, :].sum())) for c in np.flatnonzero(seen)]
            per_f1 = [_ratio(2 * diag[c], float(m[:, c].sum() + m[c, :].sum())) for c in np.flatnonzero(seen)]
            out["precision"] = _nanmean(per_precision)
            out["recall"] = _nanmean(per_recall)
            out["f1"] = _nanmean(per_f1)
        return out

    def positives(self) -> int:
        """Labelled rows of the positive class (binary models)."""
        k = self.positive
        return int(self.matrix[k, :].sum()) if k is not None and k < len(self.matrix) else 0


def _nanmean(values: list[float | None]) -> float | None:
    """Mean of the defined values: scikit-learn's macro average with ``zero_division=np.nan``."""
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


@dataclass
class RegressionAccumulator:
    """Sums for MAE, RMSE and MAPE (MAPE divides by ``max(|y|, eps)``, as scikit-learn does)."""

    rows: int = 0
    abs_error: float = 0.0
    sq_error: float = 0.0
    abs_pct_error: float = 0.0

    def add(self, true: np.ndarray, predicted: np.ndarray) -> None:
        """Add labelled rows (NaN in either is skipped by the caller)."""
        true = np.asarray(true, dtype=np.float64)
        predicted = np.asarray(predicted, dtype=np.float64)
        error = np.abs(predicted - true)
        self.rows += len(true)
        self.abs_error += float(error.sum())
        self.sq_error += float((error * error).sum())
        self.abs_pct_error += float((error / np.maximum(np.abs(true), _EPS)).sum())

    def merge(self, other: RegressionAccumulator) -> None:
        """Add another accumulator's sums."""
        self.rows += other.rows
        self.abs_error += other.abs_error
        self.sq_error += other.sq_error
        self.abs_pct_error += other.abs_pct_error

    def metrics(self) -> dict[str, float | None]:
        """Return MAE, RMSE and MAPE (None for an empty window)."""
        if not self.rows:
            return {"mae": None, "rmse": None, "mape": None}
        return {
            "mae": self.abs_error / self.rows,
            "rmse": math.sqrt(self.sq_error / self.rows),
            "mape": self.abs_pct_error / self.rows,
        }
