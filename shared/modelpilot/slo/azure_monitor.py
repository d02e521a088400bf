"""Azure Monitor burn-rate alert rules for the SLOs whose source is ``azure_monitor``, as an ARM template.

One scheduled-query (log search) rule per burn-rate rule of an SLO, over the metrics that a
diagnostic setting sends to a Log Analytics workspace (the ``AzureMetrics`` table): the query
computes the burn rate over the rule's long and short windows and returns a row only when both
exceed the rule's burn rate, which is the multiwindow condition of the Prometheus and CloudWatch
rules in one query. Every rule notifies the action group given as a parameter (the Bicep's
``alertsActionGroup``, whose Azure Function receiver is ``azure_monitor_alert``) with the common
alert schema and the custom properties ``modelpilot:model`` and ``modelpilot:environment``, which
is how that function maps the alert to a model. Rules are named
``modelpilot-<model>-<environment>-<slo>-<severity>-<long window>``: list them (or
``modelpilot-<model>-<environment>-*``) in the rollback policy's ``alarms``.

``AzureMetrics`` holds a resource's metrics without their dimensions, so an SLI whose counters
filter on dimensions cannot be alerted on from it and is refused with a typed error. A log search
rule sees at most two days of data, so a rule with a longer window (the workbook's 3-day ticket) is
left out and listed in the template's ``metadata.skipped``; the SLO timer still evaluates it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import InvalidInput

if TYPE_CHECKING:
    from modelpilot.policy.sli import MetricQuery
    from modelpilot.policy.slo import SloSpec

__all__ = ["ENVIRONMENT_PROPERTY", "MODEL_PROPERTY", "alert_rule_name", "azure_monitor_template"]

MODEL_PROPERTY = "modelpilot:model"
ENVIRONMENT_PROPERTY = "modelpilot:environment"
#: the column of AzureMetrics that holds each aggregation
_COLUMN = {"sum": "Total", "total": "Total", "samplecount": "Count", "count": "Count", "average": "Average"}
_SEVERITY = {"page": 1, "ticket": 3}
#: the longest window a scheduled-query rule can read
MAX_WINDOW = 2 * 86400


def alert_rule_name(model: str, spec: SloSpec, severity: str, long_window: str) -> str:
    """Return the rule's name (what the rollback policy's ``alarms`` match)."""
    return f"modelpilot-{model}-{spec.environment}-{spec.name}-{severity}-{long_window}"


def _kql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _counter(name: str, query: MetricQuery) -> str:
    if query.dimensions:
        raise InvalidInput(
            f"counter {name} filters on dimensions {sorted(query.dimensions)}: AzureMetrics holds metrics without "
            "dimensions, so no Azure Monitor alert rule can be generated for it (the SLO timer still evaluates it)"
        )
    if not query.query or not query.metric_name:
        raise InvalidInput(f"counter {name} needs query (the resource id) and metric_name for an Azure Monitor rule")
    column = _COLUMN.get(query.stat.lower())
    if column is None:
        raise InvalidInput(f"counter {name}: aggregation {query.stat!r} has no AzureMetrics column; use Sum or Count")
    return (
        f"AzureMetrics | where ResourceId =~ {_kql_string(query.query)} "
        f"and MetricName == {_kql_string(query.metric_name)} | project TimeGenerated, v = {column}"
    )


def _query(model: str, spec: SloSpec, long_seconds: int, short_seconds: int, burn_rate: float) -> str:
    values = {"model": model, "environment": spec.environment}
    counters = {k: q.substituted(values) for k, q in spec.sli.counters().items()}
    bad_key = "bad" if "bad" in counters else "good"
    total = _counter("total", counters["total"])
    other = _counter(bad_key, counters[bad_key])
    ratio = "bad / total" if bad_key == "bad" else "1.0 - good / total"
    budget = f"{1 - spec.objective:.10g}"
    lines = [
        f"let total_q = {total};",
        f"let {bad_key}_q = {other};",
        "let burn = (w: timespan) {",
        "    let total = toscalar(total_q | where TimeGenerated > ago(w) | summarize sum(v));",
        f"    let {bad_key} = toscalar({bad_key}_q | where TimeGenerated > ago(w) | summarize sum(v));",
        f"    iff(total > 0, ({ratio}) / {budget}, 0.0)",
        "};",
        f"print long_burn = burn({long_seconds}s), short_burn = burn({short_seconds}s)",
        f"| where long_burn > {burn_rate:g} and short_burn > {burn_rate:g}",
    ]
    return "\n".join(lines)


def _logical(*parts: str) -> str:
    return "".join(p[:1].upper() + p[1:] for part in parts for p in re.split(r"[^A-Za-z0-9]+", part) if p)


def azure_monitor_template(slos: list[tuple[str, SloSpec]]) -> dict[str, Any]:
    """Return an ARM template of burn-rate alert rules for the ``azure_monitor``-sourced SLOs."""
    resources: list[dict[str, Any]] = []
    skipped: list[str] = []
    for model, spec in slos:
        if spec.sli.source != "azure_monitor" or spec.sli.timeslice_metric:
            continue
        for rule in spec.rules:
            name = alert_rule_name(model, spec, rule.severity, rule.long_window)
            if rule.long_seconds > MAX_WINDOW:
                skipped.append(f"{name}: a log search rule reads at most 2 days")
                continue
            window = max(rule.long_seconds, 300)
            resources.append(
                {
                    "type": "Microsoft.Insights/scheduledQueryRules",
                    "apiVersion": "2023-03-15-preview",
                    "name": name,
                    "location": "[parameters('location')]",
                    "kind": "LogAlert",
                    "tags": {MODEL_PROPERTY: model, ENVIRONMENT_PROPERTY: spec.environment},
                    "properties": {
                        "displayName": name,
                        "description": f"{rule.severity}: SLO {spec.name} of {model} in {spec.environment} burns "
                        f"faster than {rule.burn_rate:g} over {rule.long_window} and {rule.short_window}",
                        "severity": _SEVERITY.get(rule.severity, 3),
                        "enabled": True,
                        "scopes": ["[parameters('workspaceId')]"],
                        "evaluationFrequency": "PT5M" if rule.short_seconds <= 3600 else "PT15M",
                        "windowSize": _iso(window),
                        "autoMitigate": True,
                        "criteria": {
                            "allOf": [
                                {
                                    "query": _query(model, spec, rule.long_seconds, rule.short_seconds, rule.burn_rate),
                                    "timeAggregation": "Count",
                                    "operator": "GreaterThan",
                                    "threshold": 0,
                                    "failingPeriods": {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1},
                                }
                            ]
                        },
                        "actions": {
                            "actionGroups": ["[parameters('actionGroupId')]"],
                            "customProperties": {
                                MODEL_PROPERTY: model,
                                ENVIRONMENT_PROPERTY: spec.environment,
                                "modelpilot:slo": spec.name,
                                "modelpilot:severity": rule.severity,
                            },
                        },
                    },
                }
            )
    if not resources:
        raise InvalidInput(
            "no SLO reads Azure Monitor with a window of at most 2 days: nothing to generate "
            "(set sli.source: azure_monitor)"
        )
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": "ModelPilot SLO burn-rate alerts (modelpilot slo rules --format azure-monitor)",
            "skipped": skipped,
        },
        "parameters": {
            "workspaceId": {
                "type": "string",
                "metadata": {"description": "Log Analytics workspace that receives the metrics (AzureMetrics)"},
            },
            "actionGroupId": {
                "type": "string",
                "metadata": {"description": "the Bicep output alertsActionGroupId (calls azure_monitor_alert)"},
            },
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
        },
        "resources": resources,
        "outputs": {"rules": {"type": "array", "value": [r["name"] for r in resources]}},
    }


def _iso(seconds: int) -> str:
    """An ISO 8601 duration the rule API accepts (minutes, hours or days)."""
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    if seconds % 3600 == 0:
        return f"PT{seconds // 3600}H"
    return f"PT{max(seconds // 60, 1)}M"
