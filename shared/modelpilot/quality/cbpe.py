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

The band is the estimate ± ``z`` standard deviations (``z = 3`` by default, NannyML's). The variance adds the
calibration's own error: the probability of a score range rests on the reference rows in that range, and that
error is shared by every window row in the range, so it does not shrink as the window grows.
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
    method: str = "isotonic"

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Return the calibrated probabilities of ``scores``."""
        out: np.ndarray = np.interp(np.asarray(scores, dtype=np.float64), self.x, self.y)
        return out

    def bins(self, scores: np.ndarray) -> np.ndarray:
        """Each score's support bin."""
        return score_bucket(scores, SUPPORT_PER_UNIT)

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
            "method": self.method,
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
            str(data.get("method", "isotonic")),
        )


def _isotonic(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the increasing isotonic regression of ``y`` on ``s`` (pool adjacent violators)."""
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
    return np.asarray(knots_x), np.asarray(knots_y)


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    eps = float(np.finfo(np.float64).eps)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _raw_is_calibrated(s: np.ndarray, y: np.ndarray) -> bool:
    """True when the raw scores are probabilities that isotonic calibration does not improve.

    NannyML's check, by two-fold cross-validation on the reference: fit on one half, compare the log loss of
    the raw and the calibrated scores on the other half, both ways.
    """
    if len(s) < 200 or s.min() < 0.0 or s.max() > 1.0:
        return False
    fold = np.random.default_rng(0).permutation(len(s)) % 2 == 0
    raw = calibrated = 0.0
    for train in (fold, ~fold):
        kx, ky = _isotonic(s[train], y[train])
        raw += _log_loss(s[~train], y[~train])
        calibrated += _log_loss(np.interp(s[~train], kx, ky), y[~train])
    return raw <= calibrated


def fit_calibration(scores: np.ndarray, positive: np.ndarray, *, check: bool = True) -> Calibration:
    """Fit an increasing isotonic regression of ``positive`` on ``scores`` (pool adjacent violators).

    Equal scores are pooled first (their mean label, weighted by count), as scikit-learn does. With ``check``,
    scores that are already calibrated probabilities (isotonic calibration does not lower their held-out log
    loss) are kept as they are (``method="identity"``): refitting them would only add the fit's noise.
    Raises ``ValueError`` without rows.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=np.float64)
    keep = ~np.isnan(s)
    s, y = s[keep], y[keep]
    if not len(s):
        raise ValueError("calibration needs at least one scored, labelled row")
    support = np.bincount(score_bucket(s, SUPPORT_PER_UNIT), minlength=3 * SUPPORT_PER_UNIT).astype(np.int64)
    positives = int(np.count_nonzero(y > 0.5))
    if check and _raw_is_calibrated(s, y):
        return Calibration(np.asarray([0.0, 1.0]), np.asarray([0.0, 1.0]), len(s), positives, support, "identity")
    knots_x, knots_y = _isotonic(s, y)
    return Calibration(knots_x, knots_y, len(s), positives, support)


@dataclass
class CbpeAccumulator:
    """Expected confusion counts of a window from calibrated probabilities and predicted classes.

    Per support bin it also counts the rows predicted positive and negative and sums their probabilities, so
    the estimate can add the calibration's own error: the calibrated probability of a bin rests on the
    ``n_b`` reference rows there, with variance about ``p_b(1 - p_b) / n_b``, shared by every window row of
    that bin (so it does not shrink with the window).
    """

    rows: int = 0
    expected_correct: float = 0.0
    var_correct: float = 0.0
    predicted_positive: int = 0
    a: float = 0.0
    var_a: float = 0.0
    b: float = 0.0
    var_b: float = 0.0
    unsupported: int = 0
    bin_pp: np.ndarray = field(default_factory=lambda: np.zeros(3 * SUPPORT_PER_UNIT))
    bin_pn: np.ndarray = field(default_factory=lambda: np.zeros(3 * SUPPORT_PER_UNIT))
    bin_p: np.ndarray = field(default_factory=lambda: np.zeros(3 * SUPPORT_PER_UNIT))

    def add(
        self,
        p: np.ndarray,
        predicted_positive: np.ndarray,
        unsupported: int = 0,
        bins: np.ndarray | None = None,
    ) -> None:
        """Add rows: calibrated probabilities, whether each row was predicted positive, and (for the
        calibration's error) each row's support bin (:meth:`Calibration.bins`)."""
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
        if bins is not None:
            size = len(self.bin_p)
            self.bin_pp += np.bincount(bins[pp], minlength=size)
            self.bin_pn += np.bincount(bins[~pp], minlength=size)
            self.bin_p += np.bincount(bins, weights=p, minlength=size)

    def merge(self, other: CbpeAccumulator) -> None:
        """Add another accumulator's sums."""
        for name in ("rows", "expected_correct", "var_correct", "predicted_positive", "a", "var_a", "b", "var_b"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unsupported += other.unsupported
        self.bin_pp += other.bin_pp
        self.bin_pn += other.bin_pn
        self.bin_p += other.bin_p

    @property
    def unsupported_share(self) -> float:
        """Share of rows scored where the reference barely had any."""
        return self.unsupported / self.rows if self.rows else 0.0

    def _calibration_variance(self, calibration: Calibration | None) -> tuple[float, float, float]:
        """``(Var A, Var B, Cov(A, B))`` due to the calibration's error, bin by bin."""
        if calibration is None:
            return 0.0, 0.0, 0.0
        rows = self.bin_pp + self.bin_pn
        mean_p = np.divide(self.bin_p, rows, out=np.zeros_like(self.bin_p), where=rows > 0)
        v = mean_p * (1.0 - mean_p) / np.maximum(calibration.support, 1)
        return (
            float(np.sum(self.bin_pp**2 * v)),
            float(np.sum(self.bin_pn**2 * v)),
            float(np.sum(self.bin_pp * self.bin_pn * v)),
        )

    def estimate(
        self, *, z: float = 3.0, auc: float | None = None, calibration: Calibration | None = None
    ) -> dict[str, dict[str, float] | None]:
        """Return ``{metric: {"value", "sd", "lower", "upper"} | None}`` for accuracy, precision, recall, F1 and
        (when ``auc``, the p-weighted AUC of the same rows, is given) ROC AUC.

        With ``calibration`` (the one that gave the probabilities) the variances add its own error: bin by bin
        for accuracy, precision, recall and F1; for ROC AUC the standard error is widened by
        ``sqrt(1 + n / n_ref)``, ``n_ref`` the calibration's reference rows.
        """
        n, npp, a, b = self.rows, self.predicted_positive, self.a, self.b
        ca, cb, cab = self._calibration_variance(calibration)
        var_a, var_b = self.var_a + ca, self.var_b + cb
        out: dict[str, dict[str, float] | None] = {}
        if n:
            # correct = A + (n₋ - B): its calibration error is δA - δB
            out["accuracy"] = _band(self.expected_correct / n, math.sqrt(self.var_correct + ca + cb - 2 * cab) / n, z)
        else:
            out["accuracy"] = None
        out["precision"] = _band(a / npp, math.sqrt(var_a) / npp, z) if npp else None
        if a + b > 0:
            var = (b * b * var_a - 2 * a * b * cab + a * a * var_b) / (a + b) ** 4
            out["recall"] = _band(a / (a + b), math.sqrt(max(var, 0.0)), z)
        else:
            out["recall"] = None
        d = npp + a + b
        if d > 0:
            ga, gb = 2 * (npp + b) / d**2, -2 * a / d**2
            var = ga * ga * var_a + 2 * ga * gb * cab + gb * gb * var_b
            out["f1"] = _band(2 * a / d, math.sqrt(max(var, 0.0)), z)
        else:
            out["f1"] = None
        positives, negatives = a + b, n - (a + b)
        if auc is not None and positives > 1 and negatives > 1:
            q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
            var = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
                positives * negatives
            )
            widen = math.sqrt(1.0 + n / calibration.rows) if calibration is not None and calibration.rows else 1.0
            out["roc_auc"] = _band(auc, math.sqrt(max(var, 0.0)) * widen, z)
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
