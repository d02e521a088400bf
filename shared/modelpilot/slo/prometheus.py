"""Prometheus recording and alerting rules for the SLOs whose source is ``prometheus``.

Per SLO and window a recording rule ``modelpilot:slo_error_ratio:rate<w>``, the burn rate
``modelpilot:slo_burn_rate:rate<w>`` and ``modelpilot:slo_error_budget_remaining``, then one
alert per burn-rate rule (``ModelPilotSloBurnRate``, labels ``severity``, ``long_window``,
``short_window``) firing when both windows burn faster than the threshold.

Absent series: a model that has never failed has no error series at all. The ratio
counts a missing ``bad`` (or ``good``) series as 0, so a healthy new model burns 0 and
keeps 100 % of its budget instead of showing "No data"; a window whose ``total`` did not
grow (no traffic) is 0 too, and only a window without any ``total`` series is unknown.

Budget scope: static rules cannot follow the live version, so label matchers on
``$version`` are dropped: the rules measure the whole environment, as the error budget
does by default (``budget_scope: environment``). An SLO whose budget is scoped to the
live version (``budget_scope: version``) cannot be written as static rules.

A ``modelpilot-lifecycle`` group records what the dashboards plot from ModelPilot's own
OpenTelemetry metrics (any source): burn rates, budgets, drift scores, promotions and
rollbacks (the 5-minute increases are the dashboard's annotations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import InvalidInput
from modelpilot.policy.sli import promql_string
from modelpilot.policy.slo import format_window

if TYPE_CHECKING:
    from modelpilot.policy.slo import SloSpec

__all__ = ["LIFECYCLE_RULES", "prometheus_rules", "recorded_names"]

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
    {
        "record": "modelpilot:promotions:increase5m",
        "expr": "sum by (model, environment) (increase(modelpilot_promotions_total[5m]))",
    },
    {
        "record": "modelpilot:rollbacks:increase5m",
        "expr": "sum by (model, environment) (increase(modelpilot_rollbacks_total[5m]))",
    },
]


def _labels(model: str, spec: SloSpec) -> dict[str, str]:
    return {"model": model, "environment": spec.environment, "slo": spec.name}


def _selector(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{promql_string(v)}"' for k, v in labels.items()) + "}"


def _promql(model: str, spec: SloSpec) -> dict[str, str]:
    if spec.budget_scope == "version":
        raise InvalidInput(
            f"SLO {model}/{spec.environment}/{spec.name}: budget_scope version follows the live version, "
            "which static rules cannot; use budget_scope environment for Prometheus rules"
        )
    values = {"model": model, "environment": spec.environment}
    return {k: q.without_version().substituted(values, promql=True).query or "" for k, q in spec.sli.counters().items()}


def _ratio_expr(counters: dict[str, str], window: str) -> str:
    """The error ratio over ``window``: a missing bad/good series counts 0, no traffic is ratio 0."""
    total = f"sum(rate({counters['total']}[{window}]))"
    if "bad" in counters:
        return f"(sum(rate({counters['bad']}[{window}])) or vector(0)) / ({total} > 0) or {total} == 0"
    return f"1 - (sum(rate({counters['good']}[{window}])) or vector(0)) / ({total} > 0) or {total} == 0"


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
