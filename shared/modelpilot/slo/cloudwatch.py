"""CloudWatch burn-rate alarms for the SLOs whose source is ``cloudwatch``, as a CloudFormation template.

Per burn-rate rule, two metric-math alarms (long and short window, the burn rate as the
expression) and a composite alarm ``ALARM(long) AND ALARM(short)``. Windows longer than a day
are evaluated as consecutive one-day periods that must all breach (CloudWatch alarms cannot
sum more than a day in one period).

The composite alarm is the one that routes: it is named
``modelpilot/<model>/<environment>/<slo>/<severity>-<long window>`` (the name the alarm
function maps to a model and environment) and tagged ``modelpilot:model`` and
``modelpilot:environment`` (the function's fallback when a name is changed), so the stack's
alarm rule hands it to ``HandleAlarm``. List it in the rollback policy's ``alarms``
(``modelpilot/churn/prod/*`` takes every generated alarm of churn in prod) to roll back on
it. The two window alarms are named ``modelpilot-…`` without tags: the alarm function
ignores them, since either window alone is not an alert.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import InvalidInput
from modelpilot.policy.slo import format_window

if TYPE_CHECKING:
    from modelpilot.policy.slo import MetricQuery, SloSpec

__all__ = ["ENVIRONMENT_TAG", "MODEL_TAG", "cloudwatch_template", "composite_alarm_name", "window_alarm_name"]

DAY = 86400
#: the tags the alarm function maps an alarm to a model and environment by (entrypoints/aws/alarm.py)
MODEL_TAG = "modelpilot:model"
ENVIRONMENT_TAG = "modelpilot:environment"


def _camel(*parts: str) -> str:
    return "".join(p[:1].upper() + p[1:] for part in parts for p in re.split(r"[^A-Za-z0-9]+", part) if p)


def composite_alarm_name(model: str, spec: SloSpec, severity: str, long_window: str) -> str:
    """Return the composite alarm's name, ``modelpilot/<model>/<environment>/<slo>/<severity>-<window>``.

    The alarm function maps the name to the model and environment; list the name (or a
    glob such as ``modelpilot/<model>/<environment>/*``) in the rollback policy's ``alarms``.
    """
    return f"modelpilot/{model}/{spec.environment}/{spec.name}/{severity}-{long_window}"


def window_alarm_name(model: str, spec: SloSpec, severity: str, long_window: str, window: str) -> str:
    """Return the name of one window alarm of a composite (not routed: the alarm function ignores it)."""
    return f"modelpilot-{model}-{spec.environment}-{spec.name}-{severity}-{long_window}-{window}"


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
                window = window_alarm_name(model, spec, rule.severity, rule.long_window, format_window(seconds))
                resources[f"{logical}{suffix}"] = _window_alarm(model, spec, window, seconds, rule.burn_rate)
            resources[logical] = {
                "Type": "AWS::CloudWatch::CompositeAlarm",
                "Properties": {
                    "AlarmName": name,
                    "AlarmDescription": f"{rule.severity}: SLO {spec.name} of {model} in {spec.environment} burns "
                    f"faster than {rule.burn_rate:g} over {rule.long_window} and {rule.short_window}",
                    "AlarmRule": {"Fn::Sub": f'ALARM("${{{logical}Long}}") AND ALARM("${{{logical}Short}}")'},
                    "AlarmActions": {"Fn::If": ["HasTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]},
                    "Tags": [
                        {"Key": MODEL_TAG, "Value": model},
                        {"Key": ENVIRONMENT_TAG, "Value": spec.environment},
                        {"Key": "modelpilot:slo", "Value": spec.name},
                        {"Key": "modelpilot:severity", "Value": rule.severity},
                    ],
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
