"""The ``slos`` and ``rollback`` blocks of the policy: defaults, validation errors that name the field."""

from __future__ import annotations

import pytest

from modelpilot.exceptions import PolicyError
from modelpilot.policy import parse_policy
from modelpilot.policy.slo import RollbackPolicy, SloSpec, default_alert_rules

RATIO = {"kind": "ratio", "source": "local", "good": {"query": "requests.ok"}, "total": {"query": "requests"}}


def _policy(slo: dict | None = None, rollback: dict | None = None):
    block: dict = {
        "slos": [{"name": "availability", "environment": "prod", "objective": 0.99, "sli": RATIO, **(slo or {})}]
    }
    if rollback is not None:
        block["rollback"] = {"prod": rollback}
    return parse_policy({"models": {"churn": block}})


def test_defaults_are_the_workbook_table_for_30_days():
    spec = _policy().model_policy("churn").slos[0]
    assert spec.window == "30d" and spec.alerts is None
    assert [(r.severity, r.burn_rate, r.long_window, r.short_window) for r in spec.rules] == [
        ("page", 14.4, "1h", "5m"),
        ("page", 6.0, "6h", "30m"),
        ("ticket", 3.0, "1d", "2h"),
        ("ticket", 1.0, "3d", "6h"),
    ]
    assert spec.alert_windows() == [300, 1800, 3600, 7200, 21600, 86400, 259200]
    assert [r.burn_rate for r in default_alert_rules("28d")] == [13.44, 5.6, 2.8, 0.9333]


def test_custom_rules_replace_the_defaults():
    spec = (
        _policy({"alerts": [{"severity": "page", "burn_rate": 10, "long_window": "2h", "short_window": 600}]})
        .model_policy("churn")
        .slos[0]
    )
    assert [(r.burn_rate, r.long_seconds, r.short_seconds) for r in spec.rules] == [(10.0, 7200, 600)]


@pytest.mark.parametrize(
    ("slo", "field", "message"),
    [
        ({"environment": "qa"}, "", "not in"),
        ({"objective": 1.0}, "objective", "less than 1"),
        ({"window": "a month"}, "window", "invalid duration"),
        ({"sli": {"kind": "ratio", "total": {"query": "requests"}}}, "sli", "exactly one of good or bad"),
        ({"sli": {"kind": "threshold", "histogram": {"query": "h"}}}, "sli", "threshold_ms"),
        ({"sli": {"kind": "quality", "metric": "mae", "value": {"query": "feedback.mae"}}}, "sli", "op and limit"),
        (
            {"sli": {"kind": "ratio", "source": "cloudwatch", "template": "sagemaker_availability"}},
            "sli",
            "endpoint_name",
        ),
        (
            {"alerts": [{"severity": "page", "burn_rate": 2, "long_window": "5m", "short_window": "1h"}]},
            "alerts",
            "shorter",
        ),
        ({"name": "Has Spaces"}, "name", "pattern"),
    ],
)
def test_invalid_slos_name_the_field(slo, field, message):
    with pytest.raises(PolicyError) as info:
        _policy(slo)
    text = str(info.value)
    assert message in text
    if field:
        assert f"slos.0.{field}" in text
    else:
        assert "'qa'" in text


def test_rollback_policy_cooldown_patterns_and_severities():
    policy = _policy(rollback={"on_slo_page": True, "alarms": ["churn-prod-*"], "cooldown": "90m"})
    rb = policy.model_policy("churn").rollback["prod"]
    assert rb.cooldown_seconds == 5400 and rb.never_onto_breached
    assert rb.alarm_matches("churn-prod-5xx") and not rb.alarm_matches("fraud-prod-5xx")
    assert rb.rolls_back_on("page") and not rb.rolls_back_on("ticket")
    with pytest.raises(PolicyError, match="cooldown"):
        _policy(rollback={"cooldown": "soon"})
    assert RollbackPolicy().cooldown == "1h"


def test_query_fills_placeholders_and_labels():
    spec = SloSpec.model_validate(
        {
            "name": "a",
            "environment": "prod",
            "objective": 0.99,
            "sli": {
                "kind": "ratio",
                "source": "prometheus",
                "good": {"query": 'ok{model="$model",version="$version"}'},
                "total": {"query": 'all{environment="$environment"}'},
            },
        }
    )
    query = spec.query("churn", version=4)
    assert (query.good, query.total) == ('ok{model="churn",version="4"}', 'all{environment="prod"}')
    assert query.params["labels"] == {"model": "churn", "environment": "prod", "version": 4}
    assert "version" not in spec.query("churn", version=4, filter_version=False).params["labels"]
