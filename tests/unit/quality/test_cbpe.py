"""Confidence-based performance estimation: the calibration, the band on a calibrated shift, and the flags."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from modelpilot.quality.auc import AucAccumulator
from modelpilot.quality.cbpe import MIN_SUPPORT, CbpeAccumulator, band_check, fit_calibration
from modelpilot.quality.metrics import ClassificationAccumulator


def world(n, rng, *, shift=0.0, concept_flip=False, distort=False):
    """Rows of a logistic world: the model's score is P(y=1 | x) (optionally a monotone distortion of it)."""
    x1 = rng.normal(shift, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    p = 1.0 / (1.0 + np.exp(-(1.5 * x1 - x2)))
    y = (rng.random(n) < (1.0 - p if concept_flip else p)).astype(np.int64)
    score = p**2 if distort else p
    return score, y


def estimate(calibration, score, threshold=0.5):
    p = calibration.apply(score)
    pred = score >= threshold
    acc = CbpeAccumulator()
    acc.add(p, pred, calibration.unsupported(score), calibration.bins(score))
    auc = AucAccumulator()
    order = np.argsort(score)
    auc.add_block(score[order], p[order], 1 - p[order])
    return acc, acc.estimate(z=3.0, auc=auc.value(), calibration=calibration)


def realised(score, y, threshold=0.5):
    pred = (score >= threshold).astype(np.int64)
    acc = ClassificationAccumulator(positive=1)
    acc.add(y, pred, np.clip(score, 0, 1))
    out = acc.metrics()
    out["roc_auc"] = skm.roc_auc_score(y, score)
    return out


def test_isotonic_calibration_matches_sklearn():
    rng = np.random.default_rng(0)
    score, y = world(4000, rng, distort=True)
    score = np.round(score, 3)  # ties
    ours = fit_calibration(score, y, check=False)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(score, y)
    probe = np.concatenate([np.linspace(-0.1, 1.1, 301), score[:200]])
    assert np.allclose(ours.apply(probe), theirs.predict(probe), atol=1e-12)
    assert ours.rows == 4000 and ours.positives == int(y.sum()) and ours.method == "isotonic"


def test_scores_already_calibrated_are_kept_and_distorted_ones_are_calibrated():
    rng = np.random.default_rng(4)
    assert fit_calibration(*world(5000, rng)).method == "identity"
    distorted = fit_calibration(*world(5000, rng, distort=True))
    assert distorted.method == "isotonic"
    assert distorted.apply(np.array([0.25]))[0] == pytest.approx(0.5, abs=0.05)  # p**2 = 0.25 means p = 0.5
    logits = fit_calibration(np.log(np.array([0.2, 0.8] * 200)), np.array([0, 1] * 200))
    assert logits.method == "isotonic"  # not probabilities: always calibrated


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("distort", [False, True])
def test_estimate_holds_within_its_band_on_a_calibrated_shift(seed, distort):
    rng = np.random.default_rng(seed)
    ref_score, ref_y = world(20000, rng, distort=distort)
    calibration = fit_calibration(ref_score, ref_y)
    score, y = world(20000, rng, shift=0.8, distort=distort)  # covariate shift: P(y | x) unchanged
    acc, est = estimate(calibration, score, threshold=0.25 if distort else 0.5)
    real = realised(score, y, threshold=0.25 if distort else 0.5)
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        band = est[metric]
        assert band is not None, metric
        assert band_check(band, real[metric]), (metric, band, real[metric])
        assert band["upper"] - band["lower"] < 0.06, metric  # the band is informative, not vacuous
    # the shift moved the metrics: the estimate followed it rather than repeating the reference
    ref_real = realised(ref_score, ref_y, threshold=0.25 if distort else 0.5)
    assert abs(est["accuracy"]["value"] - ref_real["accuracy"]) > 3 * est["accuracy"]["sd"] or seed % 2
    assert acc.unsupported_share < 0.05


def test_concept_drift_puts_the_realised_value_outside_the_band():
    rng = np.random.default_rng(7)
    calibration = fit_calibration(*world(20000, rng))
    score, y = world(5000, rng, concept_flip=True)  # P(y | x) changed: the scores are no longer calibrated
    _, est = estimate(calibration, score)
    real = realised(score, y)
    for metric in ("accuracy", "roc_auc", "f1"):
        assert band_check(est[metric], real[metric]) is False, metric


def test_scores_outside_the_reference_support_are_counted():
    rng = np.random.default_rng(8)
    ref_score = rng.uniform(0.3, 0.7, 5000)
    calibration = fit_calibration(ref_score, (rng.random(5000) < ref_score).astype(int))
    inside = rng.uniform(0.35, 0.65, 1000)
    outside = rng.uniform(0.9, 1.0, 1000)
    assert calibration.unsupported(inside) == 0
    assert calibration.unsupported(outside) == 1000
    assert calibration.support.min() < MIN_SUPPORT


def test_band_formulas_agree_with_simulation():
    """The analytic standard deviations are those of labels drawn from the calibrated probabilities."""
    rng = np.random.default_rng(3)
    p = rng.beta(2, 3, 3000)
    pred = p >= 0.4
    acc = CbpeAccumulator()
    acc.add(p, pred)
    est = acc.estimate(z=3.0)
    draws = {"accuracy": [], "precision": [], "recall": [], "f1": []}
    for _ in range(400):
        y = rng.random(3000) < p
        tp = np.sum(y & pred)
        draws["accuracy"].append(np.mean(y == pred))
        draws["precision"].append(tp / pred.sum())
        draws["recall"].append(tp / y.sum())
        draws["f1"].append(2 * tp / (pred.sum() + y.sum()))
    for metric, values in draws.items():
        assert est[metric]["value"] == pytest.approx(np.mean(values), abs=2e-3), metric
        assert est[metric]["sd"] == pytest.approx(np.std(values), rel=0.2), metric


def test_empty_and_degenerate_windows():
    assert CbpeAccumulator().estimate() == {
        "accuracy": None,
        "precision": None,
        "recall": None,
        "f1": None,
        "roc_auc": None,
    }
    acc = CbpeAccumulator()
    acc.add(np.array([0.2, 0.3]), np.array([False, False]))
    est = acc.estimate(auc=0.7)
    assert est["precision"] is None and est["accuracy"] is not None
    assert band_check(None, 0.5) is None and band_check(est["accuracy"], None) is None
    with pytest.raises(ValueError):
        fit_calibration(np.array([np.nan]), np.array([1.0]))
