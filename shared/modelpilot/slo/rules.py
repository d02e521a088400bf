"""Generate the same burn-rate alerting for other stacks: Prometheus rules and CloudWatch alarms.

Prometheus (for SLOs whose source is ``prometheus``): per SLO and window a
recording rule ``modelpilot:slo_error_ratio:rate<w>``, the burn rate
``modelpilot:slo_burn_rate:rate<w>`` and ``modelpilot:slo_error_budget_remaining``,
then one alert per burn-rate rule (``ModelPilotSloBurnRate``, labels ``severity``,
``long_window``, ``short_window``) firing when both windows burn faster than
the threshold. A ``modelpilot-lifecycle`` group records what the dashboards plot
from ModelPilot's own OpenTelemetry metrics (any source): burn rates, budgets,
drift scores, promotions and rollbacks.

CloudWatch (for SLOs whose source is ``cloudwatch``): a CloudFormation template
with, per burn-rate rule, two metric-math alarms (long and short window, the
burn rate as the expression) and a composite alarm ``ALARM(long) AND
ALARM(short)``. Name the composite alarms in the rollback policy's ``alarms`` to
roll back on them. Windows longer than a day are evaluated as consecutive
one-day periods that must all breach (CloudWatch alarms cannot sum more than a
day in one period).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml

from modelpilot.exceptions import InvalidInput
from modelpilot.policy.slo import format_window

if TYPE_CHECKING:
    from modelpilot.policy.slo import MetricQuery, SloSpec

__all__ = ["LIFECYCLE_RULES", "cloudwatch_template", "composite_alarm_name", "prometheus_rules", "recorded_names"]

DAY = 86400

#: recording rules over ModelPilot's own metrics (OpenTelemetry names as Prometheus exports them)
LIFECYCLE_RULES: list[dict[str, str]] = [
    {
        "record": "modelpilot:slo_burn_rate:max",
        "expr": "max by (model, environment, slo, window) (modelpilot_slo_burn_rate)",
    },
    {
        "record": "modelpilot:slo_error_budget_remaining:min",
        "expr": "min by (model, environment, slo) (modelpilot_slo_error_budget_remaining)",
    },
    {
        "record": "modelpilot:drift_score:max",
        "expr": "max by (model, environment, feature, method) (modelpilot_drift_score)",
    },
    {
        "record": "modelpilot:promotions:increase1d",
        "expr": "sum by (model, environment) (increase(modelpilot_promotions_total[1d]))",
    },
    {
        "record": "modelpilot:rollbacks:increase1d",
        "expr": "sum by (model, environment) (increase(modelpilot_rollbacks_total[1d]))",
    },
]


def _labels(model: str, spec: SloSpec) -> dict[str, str]:
    return {"model": model, "environment": spec.environment, "slo": spec.name}


def _selector(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _promql(model: str, spec: SloSpec) -> dict[str, str]:
    values = {"model": model, "environment": spec.environment}
    counters = {k: q.substituted(values).query or "" for k, q in spec.sli.counters().items()}
    for key, text in counters.items():
        if "$version" in text:
            raise InvalidInput(
                f"SLO {model}/{spec.environment}/{spec.name}: the {key} query uses $version, which "
                "static rules cannot follow; write the rules without it"
            )
    return counters


def _ratio_expr(counters: dict[str, str], window: str) -> str:
    total = f"sum(rate({counters['total']}[{window}]))"
    if "bad" in counters:
        return f"sum(rate({counters['bad']}[{window}])) / {total}"
    return f"1 - sum(rate({counters['good']}[{window}])) / {total}"


def prometheus_rules(slos: list[tuple[str, SloSpec]]) -> dict[str, Any]:
    """Return a Prometheus rule file (as a mapping) for the ``prometheus``-sourced SLOs."""
    groups: list[dict[str, Any]] = []
    for model, spec in slos:
        if spec.sli.source != "prometheus" or spec.sli.timeslice_metric:
            continue
        counters = _promql(model, spec)
        labels = _labels(model, spec)
        sel = _selector(labels)
        budget = 1 - spec.objective
        rules: list[dict[str, Any]] = []
        for seconds in [*spec.alert_windows(), spec.window_seconds]:
            w = format_window(seconds)
            rules.append(
                {
                    "record": f"modelpilot:slo_error_ratio:rate{w}",
                    "expr": _ratio_expr(counters, w),
                    "labels": dict(labels),
                }
            )
            rules.append(
                {
                    "record": f"modelpilot:slo_burn_rate:rate{w}",
                    "expr": f"modelpilot:slo_error_ratio:rate{w}{sel} / {budget:.10g}",
                    "labels": dict(labels),
                }
            )
        rules.append(
            {
                "record": "modelpilot:slo_error_budget_remaining",
                "expr": f"1 - modelpilot:slo_error_ratio:rate{spec.window}{sel} / {budget:.10g}",
                "labels": dict(labels),
            }
        )
        for rule in spec.rules:
            rules.append(
                {
                    "alert": "ModelPilotSloBurnRate",
                    "expr": (
                        f"modelpilot:slo_burn_rate:rate{rule.long_window}{sel} > {rule.burn_rate:g}\n"
                        f"and modelpilot:slo_burn_rate:rate{rule.short_window}{sel} > {rule.burn_rate:g}"
                    ),
                    "labels": {
                        **labels,
                        "severity": rule.severity,
                        "long_window": rule.long_window,
                        "short_window": rule.short_window,
                    },
                    "annotations": {
                        "summary": f"{model} {spec.environment}: SLO {spec.name} burns its error budget",
                        "description": (
                            f"burn rate above {rule.burn_rate:g} over {rule.long_window} and "
                            f"{rule.short_window} (objective {spec.objective:g} over {spec.window})"
                        ),
                    },
                }
            )
        groups.append({"name": f"modelpilot-slo-{model}-{spec.environment}-{spec.name}", "rules": rules})
    groups.append({"name": "modelpilot-lifecycle", "interval": "1m", "rules": [dict(r) for r in LIFECYCLE_RULES]})
    return {"groups": groups}


def recorded_names(rules: dict[str, Any]) -> set[str]:
    """Return every metric name a rule file records."""
    return {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}


# -- CloudWatch ----------------------------------------------------------------------
def _camel(*parts: str) -> str:
    return "".join(p[:1].upper() + p[1:] for part in parts for p in re.split(r"[^A-Za-z0-9]+", part) if p)


def composite_alarm_name(model: str, spec: SloSpec, severity: str, long_window: str) -> str:
    """Return the composite alarm's name (list it in the rollback policy's ``alarms``)."""
    return f"modelpilot-{model}-{spec.environment}-{spec.name}-{severity}-{long_window}"


def _metric(query_id: str, query: MetricQuery, period: int) -> dict[str, Any]:
    dims = [{"Name": k, "Value": v} for k, v in sorted(query.dimensions.items())]
    return {
        "Id": query_id,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {"Namespace": query.namespace, "MetricName": query.metric_name, "Dimensions": dims},
            "Period": period,
            "Stat": query.stat,
        },
    }


def _window_alarm(model: str, spec: SloSpec, name: str, seconds: int, threshold: float) -> dict[str, Any]:
    values = {"model": model, "environment": spec.environment}
    counters = {k: q.substituted(values) for k, q in spec.sli.counters().items()}
    period = seconds if seconds <= DAY else DAY
    periods = 1 if seconds <= DAY else -(-seconds // DAY)
    metrics = [_metric(key, q, period) for key, q in sorted(counters.items())]
    ratio = "bad / total" if "bad" in counters else "1 - good / total"
    metrics.append(
        {"Id": "burn", "Label": "burn rate", "ReturnData": True, "Expression": f"({ratio}) / {1 - spec.objective:.10g}"}
    )
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": name,
            "AlarmDescription": f"burn rate of {model} {spec.environment} {spec.name} over "
            f"{format_window(seconds)} above {threshold:g}",
            "Metrics": metrics,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": threshold,
            "EvaluationPeriods": periods,
            "DatapointsToAlarm": periods,
            "TreatMissingData": "notBreaching",
        },
    }


def cloudwatch_template(slos: list[tuple[str, SloSpec]]) -> dict[str, Any]:
    """Return a CloudFormation template of burn-rate alarms for the ``cloudwatch``-sourced SLOs."""
    resources: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    for model, spec in slos:
        if spec.sli.source != "cloudwatch" or spec.sli.timeslice_metric:
            continue
        for rule in spec.rules:
            name = composite_alarm_name(model, spec, rule.severity, rule.long_window)
            logical = _camel(model, spec.environment, spec.name, rule.severity, rule.long_window)
            for suffix, seconds in (("Long", rule.long_seconds), ("Short", rule.short_seconds)):
                resources[f"{logical}{suffix}"] = _window_alarm(
                    model, spec, f"{name}-{format_window(seconds)}", seconds, rule.burn_rate
                )
            resources[logical] = {
                "Type": "AWS::CloudWatch::CompositeAlarm",
                "Properties": {
                    "AlarmName": name,
                    "AlarmDescription": f"{rule.severity}: SLO {spec.name} of {model} in {spec.environment} burns "
                    f"faster than {rule.burn_rate:g} over {rule.long_window} and {rule.short_window}",
                    "AlarmRule": {"Fn::Sub": f"ALARM(${{{logical}Long}}) AND ALARM(${{{logical}Short}})"},
                    "AlarmActions": {"Fn::If": ["HasTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]},
                },
            }
            outputs[logical] = {"Description": f"composite alarm of {name}", "Value": {"Ref": logical}}
    if not resources:
        raise InvalidInput("no SLO reads CloudWatch: nothing to generate (set sli.source: cloudwatch)")
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "ModelPilot SLO burn-rate alarms (generated by 'modelpilot slo rules --format cloudwatch')",
        "Parameters": {
            "AlarmTopicArn": {
                "Type": "String",
                "Default": "",
                "Description": "SNS topic (or EventBridge-routed target) for alarm actions",
            }
        },
        "Conditions": {"HasTopic": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}},
        "Resources": resources,
        "Outputs": outputs,
    }


def dump_yaml(data: dict[str, Any]) -> str:
    """Return ``data`` as block YAML (what the CLI writes)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=120)
