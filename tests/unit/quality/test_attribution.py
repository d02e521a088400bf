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
