"""Confidence-based performance estimation (CBPE) of a binary classifier, before its labels arrive.

NannyML's method: when the model's scores are calibrated probabilities, ``p_i`` is the chance that row ``i`` is
positive, so the confusion counts of a window are sums of independent Bernoulli variables and their expected
values need no label. The scores are first calibrated on the reference window (labelled) with isotonic
regression, as NannyML does, so a model whose raw scores are not probabilities can still be estimated.

With ``A = Σ_{ŷ=1} p`` (expected true positives), ``B = Σ_{ŷ=0} p`` (expected false negatives), ``n₊`` rows
predicted positive and ``q_i`` the chance that row ``i`` is predicted right:

* accuracy ``Σ q / n``, with variance ``Σ q(1-q) / n²``;
* precision ``A / n₊``, variance ``Σ_{ŷ=1} p(1-p) / n₊²``;
* recall ``A / (A + B)`` and F1 ``2A / (n₊ + A + B)``, variances by the delta method (A and B independent);
* ROC AUC: the AUC weighted by ``p`` and ``1 - p`` (:mod:`modelpilot.quality.auc`), standard error by
  Hanley and McNeil with ``Σp`` positives and ``Σ(1-p)`` negatives.

The band is the estimate ± ``z`` standard deviations (``z = 3`` by default, NannyML's), widened by
``sqrt(1 + n / n_ref)`` for the calibration's own error (learnt from ``n_ref`` labelled reference rows).
The estimate holds only while the model stays calibrated (no concept drift: ``P(y | x)`` unchanged).
Two checks say when it does not: before labels, the share of the window's scores in ranges the reference
barely covered (the calibration is extrapolated there); once labels arrive, whether the realised value lies
in the band of the estimate made for the same labelled rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelpilot.quality.auc import score_bucket

__all__ = [
    "MIN_SUPPORT",
    "SUPPORT_PER_UNIT",
    "Calibration",
    "CbpeAccumulator",
    "band_check",
    "fit_calibration",
]

#: support bins per unit of the transformed score (see :func:`modelpilot.quality.auc.score_bucket`)
SUPPORT_PER_UNIT = 20
#: reference rows a support bin needs for the calibration to be trusted there
MIN_SUPPORT = 10


@dataclass(frozen=True)
class Calibration:
    """A non-decreasing map from raw score to probability, fitted on the reference.

    ``x``/``y`` are the isotonic fit's knots (linear in between, clipped outside, as scikit-learn's
    ``IsotonicRegression(out_of_bounds="clip")``); ``support`` counts the reference scores per support bin.
    """

    x: np.ndarray
    y: np.ndarray
    rows: int
    positives: int
    support: np.ndarray

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Return the calibrated probabilities of ``scores``."""
        out: np.ndarray = np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)
        return out

    def unsupported(self, scores: np.ndarray) -> int:
        """Count the scores in bins where the reference had fewer than :data:`MIN_SUPPORT` rows."""
        bins = score_bucket(scores, SUPPORT_PER_UNIT)
        return int(np.count_nonzero(self.support[bins] < MIN_SUPPORT))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "x": [float(v) for v in self.x],
            "y": [float(v) for v in self.y],
            "rows": self.rows,
            "positives": self.positives,
            "support": [int(v) for v in self.support],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Rebuild a calibration stored by :meth:`to_dict`."""
        return cls(
            np.asarray(data["x"], dtype=np.float64),
            np.asarray(data["y"], dtype=np.float64),
            int(data["rows"]),
            int(data["positives"]),
            np.asarray(data["support"], dtype=np.int64),
        )


def fit_calibration(scores: np.ndarray, positive: np.ndarray) -> Calibration:
    """Fit an increasing isotonic regression of ``positive`` on ``scores`` (pool adjacent violators).

    Equal scores are pooled first (their mean label, weighted by count), as scikit-learn does.
    Raises ``ValueError`` without rows.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=np.float64)
    keep = ~np.isnan(s)
    s, y = s[keep], y[keep]
    if not len(s):
        raise ValueError("calibration needs at least one scored, labelled row")
    xs, inverse, weights = np.unique(s, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y) / weights
    # pool adjacent violators on the distinct scores: blocks of (value, weight, first index, last index)
    values: list[float] = []
    wsum: list[float] = []
    first: list[int] = []
    last: list[int] = []
    for i, (m, w) in enumerate(zip(means.tolist(), weights.tolist(), strict=True)):
        values.append(m)
        wsum.append(float(w))
        first.append(i)
        last.append(i)
        while len(values) > 1 and values[-2] > values[-1]:
            w_new = wsum[-2] + wsum[-1]
            v_new = (values[-2] * wsum[-2] + values[-1] * wsum[-1]) / w_new
            end = last[-1]
            for stack in (values, wsum, first, last):
                stack.pop()
            values[-1], wsum[-1], last[-1] = v_new, w_new, end
    knots_x: list[float] = []
    knots_y: list[float] = []
    for v, f, la in zip(values, first, last, strict=True):
        knots_x.append(float(xs[f]))
        knots_y.append(v)
        if la != f:
            knots_x.append(float(xs[la]))
            knots_y.append(v)
    support = np.bincount(score_bucket(s, SUPPORT_PER_UNIT), minlength=3 * SUPPORT_PER_UNIT).astype(np.int64)
    return Calibration(np.asarray(knots_x), np.asarray(knots_y), len(s), int(np.count_nonzero(y > 0.5)), support)


@dataclass
class CbpeAccumulator:
    """Expected confusion counts of a window from calibrated probabilities and predicted classes."""

    rows: int = 0
    expected_correct: float = 0.0
    var_correct: float = 0.0
    predicted_positive: int = 0
    a: float = 0.0
    var_a: float = 0.0
    b: float = 0.0
    var_b: float = 0.0
    unsupported: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, p: np.ndarray, predicted_positive: np.ndarray, unsupported: int = 0) -> None:
        """Add rows: calibrated probabilities and whether each row was predicted positive."""
        p = np.asarray(p, dtype=np.float64)
        pp = np.asarray(predicted_positive, dtype=bool)
        q = np.where(pp, p, 1.0 - p)
        var = p * (1.0 - p)
        self.rows += len(p)
        self.expected_correct += float(q.sum())
        self.var_correct += float(var.sum())
        self.predicted_positive += int(np.count_nonzero(pp))
        self.a += float(p[pp].sum())
        self.var_a += float(var[pp].sum())
        self.b += float(p[~pp].sum())
        self.var_b += float(var[~pp].sum())
        self.unsupported += unsupported

    def merge(self, other: CbpeAccumulator) -> None:
        """Add another accumulator's sums."""
        for name in ("rows", "expected_correct", "var_correct", "predicted_positive", "a", "var_a", "b", "var_b"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unsupported += other.unsupported

    @property
    def unsupported_share(self) -> float:
        """Share of rows scored where the reference barely had any."""
        return self.unsupported / self.rows if self.rows else 0.0

    def estimate(
        self, *, z: float = 3.0, auc: float | None = None, reference_rows: int | None = None
    ) -> dict[str, dict[str, float] | None]:
        """Return ``{metric: {"value", "sd", "lower", "upper"} | None}`` for accuracy, precision, recall, F1 and
        (when ``auc``, the p-weighted AUC of the same rows, is given) ROC AUC.

        ``reference_rows``: the labelled rows the calibration was fitted on. The calibration's own error is of
        the order of a sample of that size, so the standard deviations are widened by ``sqrt(1 + n / n_ref)``.
        """
        n, npp, a, b = self.rows, self.predicted_positive, self.a, self.b
        out: dict[str, dict[str, float] | None] = {}
        widen = math.sqrt(1.0 + n / reference_rows) if reference_rows else 1.0
        z = z * widen
        out["accuracy"] = _band(self.expected_correct / n, math.sqrt(self.var_correct) / n, z) if n else None
        out["precision"] = _band(a / npp, math.sqrt(self.var_a) / npp, z) if npp else None
        if a + b > 0:
            sd = math.sqrt(b * b * self.var_a + a * a * self.var_b) / (a + b) ** 2
            out["recall"] = _band(a / (a + b), sd, z)
        else:
            out["recall"] = None
        d = npp + a + b
        if d > 0:
            sd = math.sqrt((2 * (npp + b)) ** 2 * self.var_a + (2 * a) ** 2 * self.var_b) / d**2
            out["f1"] = _band(2 * a / d, sd, z)
        else:
            out["f1"] = None
        positives, negatives = a + b, n - (a + b)
        if auc is not None and positives > 1 and negatives > 1:
            q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
            var = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
                positives * negatives
            )
            out["roc_auc"] = _band(auc, math.sqrt(max(var, 0.0)), z)
        else:
            out["roc_auc"] = None
        return out


def _band(value: float, sd: float, z: float) -> dict[str, float]:
    return {"value": value, "sd": sd, "lower": value - z * sd, "upper": value + z * sd}


def band_check(estimate: dict[str, float] | None, realised: float | None) -> bool | None:
    """True when ``realised`` lies in the estimate's band; None when either is missing."""
    if estimate is None or realised is None:
        return None
    return bool(estimate["lower"] <= realised <= estimate["upper"])
