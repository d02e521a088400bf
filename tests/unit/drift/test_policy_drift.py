"""The ``drift`` block of the policy file."""

from __future__ import annotations

import pytest

from modelpilot.exceptions import PolicyError
from modelpilot.policy import parse_policy
from modelpilot.policy.drift import DriftPolicy


def test_defaults_and_rules():
    p = DriftPolicy()
    assert p.thresholds["wasserstein"] == 0.1 and p.thresholds["jensen_shannon"] == 0.1 and p.thresholds["psi"] == 0.2
    assert p.rule_for("x", "numeric") == ("wasserstein", 0.1, False, False)
    assert p.rule_for("x", "categorical") == ("jensen_shannon", 0.1, False, False)
    assert p.window_seconds == 86400 and p.correction == "benjamini_hochberg"


def test_policy_file_drift_block():
    policy = parse_policy(
        {
            "defaults": {
                "drift": {
                    "window": "6h",
                    "thresholds": {"psi": 0.3},
                    "critical_features": ["age"],
                    "features": {"income": {"method": "psi"}, "plan": {"method": "ks"}},
                }
            },
        }
    )
    drift = policy.model_policy("churn").drift
    assert drift is not None and drift.window_seconds == 6 * 3600
    assert drift.rule_for("income", "numeric") == ("psi", 0.3, False, False)
    assert drift.rule_for("age", "numeric")[2] is True
    # a numeric-only method on a categorical feature falls back to the categorical default
    assert drift.rule_for("plan", "categorical")[0] == "jensen_shannon"


@pytest.mark.parametrize(
    "block, field",
    [
        ({"thresholds": {"magic": 0.1}}, "thresholds"),
        ({"thresholds": {"psi": -1}}, "thresholds"),
        ({"correction": "holm"}, "correction"),
        ({"window": "soon"}, "window"),
        ({"numeric_method": "linf"}, "numeric_method"),
        ({"max_corrupt_share": 2}, "max_corrupt_share"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_drift_blocks_name_the_field(block, field):
    with pytest.raises(PolicyError) as err:
        parse_policy({"defaults": {"drift": block}})
    assert field in err.value.details["field"]
