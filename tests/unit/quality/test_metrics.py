"""Realised metrics against scikit-learn on generated data: ties, one class only, empty windows, chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from modelpilot.quality.auc import AucAccumulator, roc_auc, score_bucket
from modelpilot.quality.metrics import (
    ClassificationAccumulator,
    ClassIndex,
    RegressionAccumulator,
    calibration_bin,
    label_text,
)


def _binary(y, pred, scores, chunk=None):
    acc = ClassificationAccumulator(positive=1)
    n = len(y)
    step = chunk or max(n, 1)
    for s in range(0, n, step):
        part = ClassificationAccumulator(positive=1)
        part.add(y[s : s + step], pred[s : s + step], scores[s : s + step])
        acc.merge(part)
    return acc


def _same(ours, theirs):
    if ours is None:
        assert math.isnan(theirs)
    else:
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk", [None, 7, 1000])
def test_binary_metrics_match_sklearn_with_tied_scores(seed, chunk):
    rng = np.random.default_rng(seed)
    n = 5000
    scores = np.round(rng.random(n), 1)  # eleven distinct scores: ties everywhere, edges 0.1, 0.2 … exactly
    y = (rng.random(n) < scores).astype(np.int64)
    pred = (scores >= 0.5).astype(np.int64)
    acc = _binary(y, pred, scores, chunk)
    got = acc.metrics()
    _same(got["accuracy"], skm.accuracy_score(y, pred))
    _same(got["precision"], skm.precision_score(y, pred, zero_division=np.nan))
    _same(got["recall"], skm.recall_score(y, pred, zero_division=np.nan))
    _same(got["f1"], skm.f1_score(y, pred, zero_division=np.nan))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, scores, labels=[0, 1]), rel=1e-12)
    assert roc_auc(scores, y == 1) == pytest.approx(skm.roc_auc_score(y, scores), rel=1e-12)


def test_calibration_error_is_the_weighted_gap_of_sklearns_calibration_curve():
    from sklearn.calibration import calibration_curve

    rng = np.random.default_rng(5)
    scores = np.concatenate([rng.random(3000) ** 2, [0.0, 0.1, 0.2, 1.0]])  # edge values included
    y = (rng.random(len(scores)) < np.sqrt(scores)).astype(np.int64)
    acc = ClassificationAccumulator(positive=1)
    acc.add(y, (scores >= 0.5).astype(np.int64), scores)
    prob_true, prob_pred = calibration_curve(y, scores, n_bins=10, strategy="uniform")
    counts = np.bincount(calibration_bin(scores), minlength=10)
    counts = counts[counts > 0]
    expected = float(np.sum(counts * np.abs(prob_true - prob_pred)) / len(scores))
    assert acc.calibration_error() == pytest.approx(expected, rel=1e-10)
    curve = acc.calibration_curve()
    assert [c["rows"] for c in curve] == counts.tolist()


def test_one_class_only():
    y = np.ones(50, dtype=np.int64)
    pred = np.array([1] * 30 + [0] * 20)
    scores = np.linspace(0.05, 0.95, 50)
    got = _binary(y, pred, scores).metrics()
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    _same(got["precision"], skm.precision_score(y, pred, zero_division=np.nan))
    _same(got["recall"], skm.recall_score(y, pred, zero_division=np.nan))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, scores, labels=[0, 1]))
    assert roc_auc(scores, y == 1) is None  # undefined with one class; scikit-learn warns and answers NaN
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(skm.roc_auc_score(y, scores))
    only_negatives = _binary(np.zeros(10, dtype=np.int64), np.zeros(10, dtype=np.int64), np.full(10, 0.2)).metrics()
    assert only_negatives["precision"] is None and only_negatives["recall"] is None and only_negatives["f1"] is None
    assert math.isnan(skm.f1_score(np.zeros(10), np.zeros(10), zero_division=np.nan))


def test_empty_window_defines_nothing():
    got = ClassificationAccumulator(positive=1).metrics()
    assert got == {
        "accuracy": None,
        "precision": None,
        "recall": None,
        "f1": None,
        "log_loss": None,
        "calibration_error": None,
    }
    assert RegressionAccumulator().metrics() == {"mae": None, "rmse": None, "mape": None}
    assert AucAccumulator().value() is None


def test_scores_outside_unit_interval_leave_log_loss_undefined():
    acc = ClassificationAccumulator(positive=1)
    acc.add(np.array([0, 1]), np.array([0, 1]), np.array([-0.5, 2.0]))
    assert acc.metrics()["log_loss"] is None and acc.calibration_error() is None
    assert acc.metrics()["accuracy"] == 1.0


def test_multiclass_macro_average_matches_sklearn():
    rng = np.random.default_rng(3)
    labels = rng.choice(["cat", "dog", "eel", "fox"], 2000, p=[0.5, 0.3, 0.15, 0.05])
    pred = np.where(rng.random(2000) < 0.7, labels, rng.choice(["cat", "dog", "eel", "gnu"], 2000))
    index = ClassIndex()
    acc = ClassificationAccumulator()
    for s in range(0, 2000, 333):
        acc.add(index.encode(labels[s : s + 333].astype(object)), index.encode(pred[s : s + 333].astype(object)))
    got = acc.metrics()
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(labels, pred))
    for name, fn in [("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)]:
        assert got[name] == pytest.approx(fn(labels, pred, average="macro", zero_division=np.nan)), name


@pytest.mark.parametrize("chunk", [None, 13])
def test_regression_metrics_match_sklearn_including_zero_targets(chunk):
    rng = np.random.default_rng(9)
    y = rng.normal(10, 5, 3000)
    y[::50] = 0.0  # MAPE divides by max(|y|, eps), as scikit-learn does
    pred = y + rng.normal(0, 2, 3000)
    acc = RegressionAccumulator()
    step = chunk or 3000
    for s in range(0, 3000, step):
        part = RegressionAccumulator()
        part.add(y[s : s + step], pred[s : s + step])
        acc.merge(part)
    got = acc.metrics()
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-12)
    assert got["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)), rel=1e-12)
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred), rel=1e-9)


def test_streaming_auc_over_score_buckets_equals_sklearn():
    rng = np.random.default_rng(11)
    n = 20000
    scores = np.concatenate([np.round(rng.random(n // 2), 3), rng.normal(0, 3, n // 2)])  # probabilities and logits
    y = rng.random(n) < 1 / (1 + np.exp(-scores))
    buckets = score_bucket(scores)
    assert np.all(np.diff(buckets[np.argsort(scores, kind="stable")]) >= 0)  # bucket order follows score order
    acc = AucAccumulator()
    for b in np.unique(buckets):
        m = buckets == b
        acc.add_block(scores[m], y[m].astype(float), (~y[m]).astype(float))
    assert acc.value() == pytest.approx(skm.roc_auc_score(y, scores), rel=1e-12)
    with pytest.raises(ValueError, match="ascending"):
        acc.add_block(np.array([0.0]), np.array([1.0]), np.array([0.0]))


def test_label_text_normalises_spellings():
    assert [label_text(v) for v in (1, 1.0, True, "1", " 1 ", np.int64(1))] == ["1"] * 6
    assert [label_text(v) for v in (None, float("nan"), "", "NA")] == [None] * 4
    assert label_text(0.25) == "0.25"
    index = ClassIndex()
    codes = index.encode(np.array([1.0, np.nan, 0.0, 1.0])).tolist()
    assert [index.classes[c] if c >= 0 else None for c in codes] == ["1", None, "0", "1"]
