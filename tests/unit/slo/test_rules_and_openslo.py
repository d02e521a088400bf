"""Rule generation, the Grafana dashboard against the generated rule names, OpenSLO import/export."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from modelpilot.exceptions import InvalidInput
from modelpilot.policy import load_policy
from modelpilot.policy.slo import SloSpec
from modelpilot.slo.cloudwatch import cloudwatch_template
from modelpilot.slo.openslo import export_openslo, import_openslo
from modelpilot.slo.prometheus import prometheus_rules

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "infra" / "prometheus" / "example-policy.yaml"


def _slos():
    policy = load_policy(EXAMPLE)
    return [(m, s) for m in sorted(policy.models) for s in policy.model_policy(m).slos]


def test_prometheus_rules_follow_the_workbook_table():
    rules = prometheus_rules(_slos())
    group = next(g for g in rules["groups"] if g["name"] == "modelpilot-slo-churn-prod-availability")
    alerts = [r for r in group["rules"] if "alert" in r]
    assert [(a["labels"]["severity"], a["labels"]["long_window"], a["labels"]["short_window"]) for a in alerts] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h"),
    ]
    page = alerts[0]["expr"]
    assert "modelpilot:slo_burn_rate:rate1h" in page and "> 14.4" in page and "modelpilot:slo_burn_rate:rate5m" in page
    burn = next(r for r in group["rules"] if r.get("record") == "modelpilot:slo_burn_rate:rate1h")
    assert burn["expr"].endswith("/ 0.005")  # 1 - 0.995
    ratio = next(r for r in group["rules"] if r.get("record") == "modelpilot:slo_error_ratio:rate1h")
    assert 'code=~"5.."' in ratio["expr"] and "$model" not in ratio["expr"] and 'model="churn"' in ratio["expr"]


def test_28_day_window_scales_burn_rates_and_keeps_day_units():
    group = next(g for g in prometheus_rules(_slos())["groups"] if g["name"] == "modelpilot-slo-churn-prod-latency")
    thresholds = [float(re.search(r"> ([0-9.]+)", r["expr"]).group(1)) for r in group["rules"] if "alert" in r]
    assert thresholds == [13.44, 5.6, 2.8, 0.9333]
    assert any(r.get("record") == "modelpilot:slo_error_ratio:rate28d" for r in group["rules"])
    bucket = next(r for r in group["rules"] if r.get("record") == "modelpilot:slo_error_ratio:rate5m")
    assert "modelpilot_request_duration_seconds_bucket{" in bucket["expr"] and 'le="0.25"' in bucket["expr"]


def test_only_prometheus_slos_get_prometheus_rules_and_only_cloudwatch_get_alarms():
    names = {g["name"] for g in prometheus_rules(_slos())["groups"]}
    assert not any("fraud" in n for n in names)
    template = cloudwatch_template(_slos())
    assert all("Fraud" in k for k in template["Resources"])
    with pytest.raises(InvalidInput, match="no SLO reads CloudWatch"):
        cloudwatch_template([(m, s) for m, s in _slos() if m == "churn"])


def _spec(**extra):
    return SloSpec.model_validate(
        {
            "name": "a",
            "environment": "prod",
            "objective": 0.99,
            "sli": {
                "kind": "ratio",
                "source": "prometheus",
                "bad": {"query": 'x{model="$model",version="$version",code=~"5.."}'},
                "total": {"query": 'y{version="$version"}'},
            },
            **extra,
        }
    )


def test_static_rules_measure_the_environment_so_version_matchers_are_dropped():
    [group, _lifecycle] = prometheus_rules([("m", _spec())])["groups"]
    ratio = next(r for r in group["rules"] if r.get("record") == "modelpilot:slo_error_ratio:rate30d")
    assert (
        "version" not in ratio["expr"]
        and 'x{model="m",code=~"5.."}' in ratio["expr"]
        and "rate(y[30d])" in ratio["expr"]
    )
    with pytest.raises(InvalidInput, match="budget_scope version"):
        prometheus_rules([("m", _spec(budget_scope="version"))])


def test_absent_error_series_counts_zero_and_idle_windows_burn_zero():
    [group, _lifecycle] = prometheus_rules([("m", _spec())])["groups"]
    ratio = next(r for r in group["rules"] if r.get("record") == "modelpilot:slo_error_ratio:rate1h")["expr"]
    assert ratio.startswith("(sum(rate(") and "or vector(0))" in ratio and ratio.endswith("[1h])) == 0")


def test_the_budget_spans_the_environment_unless_scoped_to_the_version():
    environment = _spec().query("m", version=3, filter_version=False)
    assert "version" not in environment.bad and "version" not in environment.total
    version = _spec(budget_scope="version").query("m", version=3, filter_version=True)
    assert 'version="3"' in version.bad


def test_openslo_round_trip_keeps_every_spec():
    slos = _slos()
    text = export_openslo(slos)
    docs = list(yaml.safe_load_all(text))
    assert {d["apiVersion"] for d in docs} == {"openslo/v1"} and {d["kind"] for d in docs} == {"SLO"}
    back = import_openslo(text)
    assert [(m, s.model_dump()) for m, s in back] == [(m, s.model_dump()) for m, s in slos]


def test_openslo_export_resolves_queries_for_other_tools():
    doc = next(yaml.safe_load_all(export_openslo(_slos())))
    ratio = doc["spec"]["indicator"]["spec"]["ratioMetric"]
    assert ratio["counter"] is True
    assert ratio["total"]["metricSource"] == {
        "type": "Prometheus",
        "spec": {"query": 'modelpilot_requests_total{model="churn",environment="prod"}'},
    }
    assert doc["spec"]["objectives"][0]["target"] == 0.995
    assert doc["spec"]["timeWindow"] == [{"duration": "30d", "isRolling": True}]


FOREIGN = """
apiVersion: openslo/v1
kind: SLI
metadata: {name: web-availability}
spec:
  ratioMetric:
    counter: true
    good: {metricSource: {type: Prometheus, spec: {query: 'http_requests_total{code!~"5.."}'}}}
    total: {metricSource: {type: Prometheus, spec: {query: 'http_requests_total'}}}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: fast-burn}
spec:
  severity: critical
  condition: {kind: burnrate, op: gte, threshold: 10, lookbackWindow: 2h, alertAfter: 5m}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: burn}
spec:
  conditions: [{conditionRef: fast-burn}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: web-availability}
spec:
  service: web
  indicatorRef: web-availability
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
  alertPolicies: [{alertPolicyRef: burn}]
"""


def test_import_of_a_foreign_openslo_file_with_refs():
    [(model, spec)] = import_openslo(FOREIGN, model="churn", environment="prod")
    assert (model, spec.name, spec.environment, spec.objective, spec.window) == (
        "churn",
        "web-availability",
        "prod",
        0.999,
        "28d",
    )
    assert spec.sli.kind == "ratio" and spec.sli.good.query == 'http_requests_total{code!~"5.."}'
    [rule] = spec.rules
    assert (rule.severity, rule.burn_rate, rule.long_window, rule.short_window) == ("page", 10.0, "2h", "10m")


def test_import_errors_name_the_document():
    with pytest.raises(InvalidInput, match="model and environment"):
        import_openslo(FOREIGN.replace("  service: web\n", ""))
    with pytest.raises(InvalidInput, match="apiVersion"):
        import_openslo("apiVersion: openslo/v0\nkind: SLO\n")
    with pytest.raises(InvalidInput, match="no 'kind: SLO'"):
        import_openslo(FOREIGN.split("---")[0])
    bad_type = FOREIGN.replace("type: Prometheus", "type: Datadog")
    with pytest.raises(InvalidInput, match="Datadog"):
        import_openslo(bad_type, model="m", environment="prod")


# -- OpenSLO v1 conformance -----------------------------------------------------------------------
def test_openslo_export_has_one_condition_per_alert_policy_and_notification_targets():
    docs = list(yaml.safe_load_all(export_openslo(_slos(), notifier="arn:aws:sns:us-east-1:123456789012:alerts")))
    for doc in docs:
        policies = doc["spec"]["alertPolicies"]
        assert policies
        for policy in policies:
            assert policy["kind"] == "AlertPolicy" and re.fullmatch(
                r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", policy["metadata"]["name"]
            )
            [condition] = policy["spec"]["conditions"]  # the v1 spec allows exactly one
            assert condition["kind"] == "AlertCondition" and condition["spec"]["condition"]["kind"] == "burnrate"
            assert condition["spec"]["condition"]["op"] in {"lte", "gte", "lt", "gt"}
            [target] = policy["spec"]["notificationTargets"]
            assert target["kind"] == "AlertNotificationTarget"
            assert target["spec"]["target"] == "arn:aws:sns:us-east-1:123456789012:alerts"
    churn = next(d for d in docs if d["metadata"]["name"] == "churn-prod-availability")
    assert [p["metadata"]["name"] for p in churn["spec"]["alertPolicies"]] == [
        "churn-prod-availability-page-1h",
        "churn-prod-availability-page-6h",
        "churn-prod-availability-ticket-1d",
        "churn-prod-availability-ticket-3d",
    ]


def test_openslo_round_trip_keeps_custom_alerts_and_budget_scope():
    spec = _spec(
        budget_scope="version",
        alerts=[{"severity": "page", "burn_rate": 10, "long_window": "2h", "short_window": "10m"}],
    )
    [(model, back)] = import_openslo(export_openslo([("m", spec)]))
    assert model == "m" and back.model_dump() == spec.model_dump()


REFS = """
apiVersion: openslo/v1
kind: Service
metadata: {name: web}
spec: {description: the web shop}
---
apiVersion: openslo/v1
kind: SLI
metadata: {name: web-errors}
spec:
  ratioMetric:
    counter: true
    bad: {metricSource: {type: Prometheus, spec: {query: 'http_requests_total{code=~"5.."}'}}}
    total: {metricSource: {type: Prometheus, spec: {query: 'http_requests_total'}}}
---
apiVersion: openslo/v1
kind: AlertNotificationTarget
metadata: {name: on-call}
spec: {target: pagerduty, description: the on-call engineer}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: fast}
spec:
  severity: page
  condition: {kind: burnrate, op: gt, threshold: 14.4, lookbackWindow: 1h, alertAfter: 2m}
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: slow}
spec:
  severity: ticket
  condition: {kind: burnrate, op: gt, threshold: 1, lookbackWindow: 3d, alertAfter: 1h}
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: fast-burn}
spec:
  conditions: [{conditionRef: fast}]
  notificationTargets: [{targetRef: on-call}]
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: slow-burn}
spec:
  conditions: [{conditionRef: slow}]
  notificationTargets: [{targetRef: on-call}]
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: web-availability}
spec:
  service: web
  indicatorRef: web-errors
  timeWindow: [{duration: 30d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: good, targetPercent: 99.5}]
  alertPolicies: [{alertPolicyRef: fast-burn}, {alertPolicyRef: slow-burn}]
"""


def test_import_resolves_indicator_alert_policy_and_condition_refs_and_target_percent():
    [(model, spec)] = import_openslo(REFS, environment="prod")
    assert (model, spec.environment, spec.objective, spec.window) == ("web", "prod", 0.995, "30d")
    assert spec.sli.bad.query == 'http_requests_total{code=~"5.."}'
    assert [(r.severity, r.burn_rate, r.long_window, r.short_window) for r in spec.rules] == [
        ("page", 14.4, "1h", "5m"),
        ("ticket", 1.0, "3d", "6h"),
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (("targetPercent: 99.5", "displayName: none"), "needs target .* or targetPercent"),
        (("indicatorRef: web-errors", "indicatorRef: nope"), "indicatorRef 'nope' names no SLI"),
        (("{alertPolicyRef: slow-burn}", "{alertPolicyRef: nope}"), "alertPolicyRef 'nope' names no AlertPolicy"),
        (("[{conditionRef: slow}]", "[{conditionRef: nope}]"), "conditionRef 'nope' names no AlertCondition"),
    ],
)
def test_import_names_what_is_missing(change, reason):
    with pytest.raises(InvalidInput, match=reason):
        import_openslo(REFS.replace(*change), environment="prod")


# The shapes of OpenSLO's own example documents (examples/budgeting-method in the OpenSLO repository):
# each is imported or refused with the reason.
EXAMPLE_THRESHOLD_OCCURRENCES = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: search-slo}
spec:
  service: web-shop
  indicator:
    metadata: {name: search-latency}
    spec: {thresholdMetric: {metricSource: {type: Any, spec: {}}}}
  timeWindow: [{duration: 2w, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{displayName: Good experience, op: lt, value: 500, target: 0.99}]
  alertPolicies:
"""
EXAMPLE_RATIO_TIMESLICES = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: main-page}
spec:
  service: web-shop
  indicator:
    metadata: {name: response-code}
    spec:
      ratioMetric:
        good: {metricSource: {type: Any, spec: {query: Any}}}
        total: {metricSource: {type: Any, spec: {query: Any}}}
  timeWindow: [{duration: 2w, isRolling: true}]
  budgetingMethod: RatioTimeslices
  objectives: [{displayName: Good, op: gt, timeSliceWindow: 1m, target: 0.99}]
"""
EXAMPLE_CALENDAR_TIMESLICES = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: service-availability}
spec:
  service: web-availability
  indicator:
    metadata: {name: web-availability}
    spec:
      ratioMetric:
        good: {metricSource: {type: Any, spec: {query: Any}}}
        total: {metricSource: {type: Any, spec: {query: Any}}}
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar: {startTime: "2022-01-01 12:00:00", timeZone: America/New_York}
  budgetingMethod: Timeslices
  objectives:
    - {displayName: Internal objective, op: gt, target: 0.995, timeSliceTarget: 0.99, timeSliceWindow: 1m}
    - {displayName: SLA, target: 0.99, timeSliceTarget: 0.99, timeSliceWindow: 1m}
  alertPolicies:
"""


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (EXAMPLE_THRESHOLD_OCCURRENCES, "thresholdMetric counted per occurrence"),
        (EXAMPLE_RATIO_TIMESLICES, "budgetingMethod RatioTimeslices is not supported"),
        (EXAMPLE_CALENDAR_TIMESLICES, "one objective per SLO, this one has 2"),
        (
            EXAMPLE_CALENDAR_TIMESLICES.replace(
                "    - {displayName: SLA, target: 0.99, timeSliceTarget: 0.99, timeSliceWindow: 1m}\n", ""
            ),
            "calendar-aligned",
        ),
        (EXAMPLE_RATIO_TIMESLICES.replace("RatioTimeslices", "Occurrences"), "unsupported metricSource type 'Any'"),
    ],
)
def test_openslo_example_shapes_are_refused_with_the_reason(document, reason):
    with pytest.raises(InvalidInput, match=reason):
        import_openslo(document, model="web", environment="prod")


def test_openslo_example_shape_imports_once_its_source_is_one_modelpilot_reads():
    document = EXAMPLE_RATIO_TIMESLICES.replace("RatioTimeslices", "Occurrences").replace(
        "type: Any", "type: Prometheus"
    )
    [(model, spec)] = import_openslo(document, environment="prod")
    assert (model, spec.name, spec.objective, spec.window, spec.sli.good.query) == (
        "web-shop",
        "main-page",
        0.99,
        "14d",
        "Any",
    )


def test_quality_slos_export_to_openslo_and_come_back():
    slos = [
        ("churn", SloSpec.model_validate(spec))
        for spec in (
            {
                "name": "accuracy",
                "environment": "prod",
                "objective": 0.9,
                "sli": {"kind": "quality", "source": "quality", "metric": "accuracy", "op": ">=", "limit": 0.7},
            },
            {
                "name": "right",
                "environment": "prod",
                "objective": 0.9,
                "sli": {"kind": "quality", "source": "quality", "metric": "correct"},
            },
        )
    ]
    text = export_openslo(slos)
    sources = {
        d["spec"]["indicator"]["spec"].get("ratioMetric", {}).get("total", {}).get("metricSource", {}).get("type")
        for d in yaml.safe_load_all(text)
    }
    assert "ModelPilotQuality" in sources
    back = import_openslo(text)
    assert [(m, s.model_dump()) for m, s in back] == [(m, s.model_dump()) for m, s in slos]
