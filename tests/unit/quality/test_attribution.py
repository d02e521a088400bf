"""NDCG of attribution rankings: Clarify's definition on a hand-computed example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelpilot.quality.attribution import AttributionAccumulator, ndcg, rank_changes, ranking


def test_ndcg_hand_computed():
    reference = {"a": 0.5, "b": 0.3, "c": 0.2}
    current = {"b": 0.6, "a": 0.4, "c": 0.1}  # a and b swapped
    # DCG  = F(b)/log2(2) + F(a)/log2(3) + F(c)/log2(4) = 0.3 + 0.5/1.5849625 + 0.2/2 = 0.7154648768
    # iDCG = F(a)/log2(2) + F(b)/log2(3) + F(c)/log2(4) = 0.5 + 0.3/1.5849625 + 0.2/2 = 0.7892789261
    assert 0.3 + 0.5 / math.log2(3) + 0.1 == pytest.approx(0.7154648768, abs=1e-9)
    assert ndcg(reference, current) == pytest.approx(0.7154648768 / 0.7892789261, abs=1e-9)
    assert ndcg(reference, current) == pytest.approx(0.906479, abs=1e-6)


def test_ndcg_edges():
    reference = {"a": 0.5, "b": 0.3, "c": 0.2}
    assert ndcg(reference, {"a": 9.0, "b": 2.0, "c": 1.0}) == pytest.approx(1.0)  # same order, other scale
    worst = ndcg(reference, {"c": 3.0, "b": 2.0, "a": 1.0})
    assert worst == pytest.approx((0.2 + 0.3 / math.log2(3) + 0.5 / 2) / (0.5 + 0.3 / math.log2(3) + 0.1))
    # top_k: only the first ranks count; a feature missing from the window ranks last
    assert ndcg(reference, {"b": 1.0, "a": 0.5}, top_k=1) == pytest.approx(0.3 / 0.5)
    assert ndcg(reference, {"c": 1.0}) == pytest.approx((0.2 + 0.5 / math.log2(3) + 0.3 / 2) / 0.7892789261, abs=1e-9)
    assert ndcg({}, {"a": 1.0}) is None
    assert ndcg({"a": 0.0}, {"a": 1.0}) is None


def test_mean_absolute_attribution_and_rank_changes():
    acc = AttributionAccumulator()
    acc.add("a", np.array([1.0, -3.0, np.nan]))
    acc.add("b", np.array([0.5, 0.5]))
    other = AttributionAccumulator()
    other.add("a", np.array([2.0]))
    acc.merge(other)
    assert acc.importances() == {"a": 2.0, "b": 0.5}
    assert acc.rows == 3
    assert ranking({"x": 1.0, "y": 1.0, "z": 2.0}) == ["z", "x", "y"]
    changes = rank_changes({"a": 0.5, "b": 0.3, "c": 0.2}, {"c": 0.6, "a": 0.4, "b": 0.1})
    assert changes[0]["feature"] == "c" and changes[0]["rank_change"] == 2  # climbed from 3rd to 1st
    assert {c["feature"]: c["rank_change"] for c in changes} == {"c": 2, "a": -1, "b": -1}


def test_shap_is_optional_and_lazily_imported(monkeypatch):
    import sys
    import types

    from modelpilot.exceptions import InvalidInput
    from modelpilot.service.quality.explain import shap_attributions

    frame = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}
    monkeypatch.setitem(sys.modules, "shap", None)  # not installed
    with pytest.raises(InvalidInput, match=r"modelpilot\[shap\]"):
        shap_attributions(lambda x: x.sum(axis=1), frame, frame)

    calls = {}

    class Explainer:  # the shape of shap.Explainer: (model, background)(rows) -> .values
        def __init__(self, model, background):
            calls["background"] = background

        def __call__(self, rows):
            calls["rows"] = rows
            return types.SimpleNamespace(values=rows - calls["background"].mean(axis=0))

    monkeypatch.setitem(sys.modules, "shap", types.SimpleNamespace(Explainer=Explainer))
    got = shap_attributions(lambda x: x.sum(axis=1), frame, frame)
    assert got["a"].tolist() == [-0.5, 0.5] and got["b"].tolist() == [-0.5, 0.5]
    assert calls["rows"].shape == (2, 2)


def test_the_default_install_does_not_import_shap_or_sklearn():
    import subprocess
    import sys

    code = (
        "import sys, modelpilot.service.quality.batch, modelpilot.service.quality.explain, modelpilot.quality.cbpe;"
        "print(sorted(m for m in ('shap', 'sklearn', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
