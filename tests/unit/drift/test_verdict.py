"""Multiple-testing correction, verdicts and dataset severity."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modelpilot.drift.engine import compare_frames
from modelpilot.drift.frames import Categorical
from modelpilot.drift.verdict import adjust_pvalues, dataset_severity, max_severity
from modelpilot.policy.drift import DriftPolicy, FeatureDriftRule


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_matches_scipy(seed):
    p = np.random.default_rng(seed).uniform(0, 0.2, 17) ** 2
    assert np.allclose(adjust_pvalues(list(p)), stats.false_discovery_control(p, method="bh"), rtol=1e-12)


def test_bonferroni_none_and_missing_values():
    assert adjust_pvalues([0.01, None, 0.2, 0.5], "bonferroni") == [0.03, None, 0.6000000000000001, 1.0]
    assert adjust_pvalues([0.01, None], "none") == [0.01, None]
    with pytest.raises(ValueError):
        adjust_pvalues([0.1], "holm")


def test_severity_rules():
    assert dataset_severity(0, 10, False, warning_share=0, critical_share=0.5) == "none"
    assert dataset_severity(1, 10, False, warning_share=0, critical_share=0.5) == "warning"
    assert dataset_severity(1, 10, False, warning_share=0.2, critical_share=0.5) == "none"
    assert dataset_severity(5, 10, False, warning_share=0, critical_share=0.5) == "critical"
    assert dataset_severity(1, 10, True, warning_share=0, critical_share=0.5) == "critical"
    assert max_severity("none", "critical", "warning") == "critical"


RNG = np.random.default_rng(99)


def test_big_samples_do_not_cry_wolf():
    # a tiny real shift is significant with a million rows, but below the effect threshold
    n = 1_000_000
    report = compare_frames({"x": RNG.normal(size=n)}, {"x": RNG.normal(0.02, 1.0, size=n)})
    x = report.feature("x")
    assert x["pvalue_corrected"] < 1e-6
    assert x["effect"] < 0.1 and not x["drifted"] and report.severity == "none"


def test_small_samples_need_significance():
    # a large effect on 8 rows is not significant after correction
    report = compare_frames({"x": RNG.normal(size=5000)}, {"x": RNG.normal(0.6, 1.0, size=8)})
    x = report.feature("x")
    assert x["effect"] > 0.1 and x["pvalue_corrected"] > 0.05 and not x["drifted"]


def test_per_feature_overrides_and_critical_features():
    n = 20_000
    ref = {
        "a": RNG.normal(size=n),
        "b": RNG.normal(size=n),
        "c": RNG.normal(size=n),
        "d": RNG.normal(size=n),
        "k": Categorical(RNG.integers(0, 3, n), ["x", "y", "z"]),
    }
    cur = {
        "a": RNG.normal(0.3, 1, size=n),
        "b": RNG.normal(0.3, 1, size=n),
        "c": RNG.normal(size=n),
        "d": RNG.normal(size=n),
        "k": Categorical(RNG.integers(0, 3, n), ["x", "y", "z"]),
    }
    base = compare_frames(ref, cur)
    assert base.drifted_features == ["a", "b"] or base.drifted_features == ["b", "a"]
    assert base.severity == "warning"  # 2 of 5 < critical share 0.5
    assert [f["name"] for f in base.features][:2] == base.drifted_features
    policy = DriftPolicy(
        features={"a": FeatureDriftRule(method="psi", threshold=5.0), "b": FeatureDriftRule(critical=True)}
    )
    tuned = compare_frames(ref, cur, policy=policy)
    assert tuned.drifted_features == ["b"] and tuned.severity == "critical"
    a = tuned.feature("a")
    assert a["method"] == "psi" and a["threshold"] == 5.0
    ignored = compare_frames(ref, cur, policy=DriftPolicy(features={"a": FeatureDriftRule(ignore=True)}))
    assert ignored.drifted_features == ["b"] and ignored.feature("a")["pvalue_corrected"] is None


def test_correction_is_reported_and_applied():
    n = 4000
    ref = {f"f{i}": RNG.normal(size=n) for i in range(10)}
    cur = {f"f{i}": RNG.normal(size=n) for i in range(10)}
    cur["f0"] = RNG.normal(0.12, 1, size=n)
    bh = compare_frames(ref, cur)
    bonf = compare_frames(ref, cur, policy=DriftPolicy(correction="bonferroni"))
    raw = bh.feature("f0")["pvalue"]
    assert bonf.feature("f0")["pvalue_corrected"] == pytest.approx(min(1.0, raw * 10))
    assert bh.feature("f0")["pvalue_corrected"] <= bonf.feature("f0")["pvalue_corrected"]
    assert bh.data["settings"]["correction"] == "benjamini_hochberg"
