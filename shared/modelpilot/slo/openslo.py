"""OpenSLO v1 ↔ the policy's ``slos`` block.

Mapping (one SLO of one model ↔ one ``kind: SLO`` document):

=========================  ==================================================
policy                      OpenSLO v1
=========================  ==================================================
model / environment / name  ``metadata.annotations`` ``modelpilot.io/*``;
                            ``metadata.name`` = ``<model>-<env>-<name>``;
                            ``spec.service`` = model
objective                   ``spec.objectives[0].target``
window                      ``spec.timeWindow[0]`` (``duration``, ``isRolling: true``)
ratio / threshold /         ``spec.indicator.spec.ratioMetric`` (``counter: true``,
quality ``correct``         ``good`` or ``bad``, ``total``); the counters are the
                            resolved ones, so other OpenSLO tools read them as is
quality metric per slice    ``budgetingMethod: Timeslices``, ``thresholdMetric``,
                            ``objectives[0].op``/``value``/``timeSliceWindow``
source                      ``metricSource.type``: ``Prometheus``, ``CloudWatch``,
                            ``AzureMonitor``, ``ModelPilot`` (local store)
alerts                      one inline ``AlertPolicy`` per burn-rate rule (the v1
                            spec allows one condition per policy): its
                            ``AlertCondition`` ``kind: burnrate``, ``op: gt``,
                            ``threshold``, ``lookbackWindow``; the short window in
                            ``modelpilot.io/short-window``; ``notificationTargets``:
                            the deployment's notifier (``AlertNotificationTarget``)
budget_scope                ``modelpilot.io/budget-scope`` (when ``version``)
=========================  ==================================================

Import reads ``SLO``, ``SLI``, ``AlertPolicy``, ``AlertCondition`` (and ignores
``Service``, ``AlertNotificationTarget``), inline or by ``indicatorRef``,
``alertPolicyRef``, ``conditionRef``; an objective's ``target`` or ``targetPercent``.
What ModelPilot cannot evaluate is refused with the reason (``InvalidInput``): a
calendar-aligned window, more than one objective, ``RatioTimeslices`` budgeting, a
threshold metric counted per occurrence, a ``metricSourceRef`` to a ``DataSource``, or a
metric source other than Prometheus, CloudWatch, Azure Monitor or ModelPilot's own.

What OpenSLO cannot say natively (a histogram or template definition, the
threshold in ms) travels in the indicator's ``modelpilot.io/sli`` annotation, so
export then import gives back the same spec. An OpenSLO document written by
another tool (no annotations) imports as a ratio SLI from its ``ratioMetric``.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from modelpilot.domain.durations import format_duration, parse_duration
from modelpilot.exceptions import InvalidInput
from modelpilot.policy.slo import BurnRateRule, MetricQuery, SliSpec, SloSpec

__all__ = ["export_openslo", "import_openslo"]

API = "openslo/v1"
ANN = "modelpilot.io/"
_TYPES = {
    "prometheus": "Prometheus",
    "cloudwatch": "CloudWatch",
    "azure_monitor": "AzureMonitor",
    "local": "ModelPilot",
    "quality": "ModelPilotQuality",
}
_SOURCES = {v.lower(): k for k, v in _TYPES.items()}
_PAGE_WORDS = {"page", "critical", "high"}


# -- export ------------------------------------------------------------------------
#: the notification target of exported alert policies when the caller names none
NOTIFIER = "modelpilot-notifier"


def export_openslo(slos: list[tuple[str, SloSpec]], *, notifier: str = NOTIFIER) -> str:
    """Return a multi-document OpenSLO v1 YAML for ``(model, spec)`` pairs.

    ``notifier`` is where alerts go (the deployment's ``Notifier``: the SNS topic ARN,
    the Event Grid topic, ...); every alert policy names it as its notification target.
    """
    docs = [_slo_doc(model, spec, notifier) for model, spec in slos]
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def _metric_source(source: str, query: MetricQuery) -> dict[str, Any]:
    if source == "prometheus":
        spec: dict[str, Any] = {"query": query.query}
    elif source in ("local", "quality"):
        spec = {"series": query.query}
    else:
        spec = {
            "namespace": query.namespace,
            "metricName": query.metric_name,
            "stat": query.stat,
            "dimensions": [{"name": k, "value": v} for k, v in sorted(query.dimensions.items())],
        }
    return {"metricSource": {"type": _TYPES[source], "spec": spec}}


def _slo_doc(model: str, spec: SloSpec, notifier: str) -> dict[str, Any]:
    sli = spec.sli
    values = {"model": model, "environment": spec.environment}
    counters = {k: q.substituted(values, promql=sli.source == "prometheus") for k, q in sli.counters().items()}
    objective: dict[str, Any] = {"displayName": spec.name, "target": spec.objective}
    if sli.timeslice_metric:
        indicator_spec: dict[str, Any] = {"thresholdMetric": _metric_source(sli.source, counters["value"])}
        objective.update(op="gte" if sli.op == ">=" else "lte", value=sli.limit, timeSliceWindow=sli.timeslice)
    else:
        ratio: dict[str, Any] = {"counter": True}
        for key in ("good", "bad", "total"):
            if key in counters:
                ratio[key] = _metric_source(sli.source, counters[key])
        indicator_spec = {"ratioMetric": ratio}
    name = f"{model}-{spec.environment}-{spec.name}"
    sli_json = json.dumps(sli.model_dump(exclude_defaults=True), sort_keys=True)
    annotations = {f"{ANN}model": model, f"{ANN}environment": spec.environment, f"{ANN}slo": spec.name}
    if spec.budget_scope != "environment":
        annotations[f"{ANN}budget-scope"] = spec.budget_scope
    return {
        "apiVersion": API,
        "kind": "SLO",
        "metadata": {
            "name": name,
            "displayName": f"{model} {spec.name} ({spec.environment})",
            "annotations": annotations,
        },
        "spec": {
            "description": spec.description,
            "service": model,
            "indicator": {
                "metadata": {"name": f"{name}-sli", "annotations": {f"{ANN}sli": sli_json}},
                "spec": indicator_spec,
            },
            "timeWindow": [{"duration": spec.window, "isRolling": True}],
            "budgetingMethod": "Timeslices" if sli.timeslice_metric else "Occurrences",
            "objectives": [objective],
            "alertPolicies": [_alert_policy(name, spec, rule, notifier) for rule in spec.rules],
        },
    }


def _alert_policy(name: str, spec: SloSpec, rule: BurnRateRule, notifier: str) -> dict[str, Any]:
    """One inline ``AlertPolicy`` with its one burn-rate ``AlertCondition`` and the notifier as its target."""
    policy_name = f"{name}-{rule.severity}-{rule.long_window}"
    annotations = {f"{ANN}defaults": "true"} if spec.alerts is None else {}
    return {
        "kind": "AlertPolicy",
        "metadata": {"name": policy_name, "annotations": annotations},
        "spec": {
            "description": f"{rule.severity}: burn rate above {rule.burn_rate:g} over {rule.long_window} "
            f"and {rule.short_window}",
            "alertWhenBreaching": True,
            "alertWhenResolved": False,
            "alertWhenNoData": False,
            "conditions": [
                {
                    "kind": "AlertCondition",
                    "metadata": {
                        "name": f"{policy_name}-burnrate",
                        "annotations": {f"{ANN}short-window": rule.short_window},
                    },
                    "spec": {
                        "severity": rule.severity,
                        "condition": {
                            "kind": "burnrate",
                            "op": "gt",
                            "threshold": rule.burn_rate,
                            "lookbackWindow": rule.long_window,
                            "alertAfter": "0m",
                        },
                    },
                }
            ],
            "notificationTargets": [
                {
                    "kind": "AlertNotificationTarget",
                    "metadata": {"name": "modelpilot-notifier"},
                    "spec": {"target": notifier, "description": "ModelPilot's notifier: people hear of burn alerts"},
                }
            ],
        },
    }


# -- import ------------------------------------------------------------------------
def import_openslo(
    text: str, *, model: str | None = None, environment: str | None = None, source: str = "<openslo>"
) -> list[tuple[str, SloSpec]]:
    """Parse OpenSLO v1 YAML (``SLO``, ``SLI``, ``AlertPolicy``, ``AlertCondition`` documents).

    ``model``/``environment`` apply to SLOs without ModelPilot annotations.
    Raises ``InvalidInput`` naming the document when something cannot be mapped.
    """
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source}: not valid YAML: {exc}") from None
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("apiVersion") != API:
            raise InvalidInput(f"{source}: every document needs apiVersion: {API}")
        by_kind.setdefault(str(doc.get("kind")), {})[_name(doc)] = doc
    slos = list(by_kind.get("SLO", {}).values())
    if not slos:
        raise InvalidInput(f"{source}: no 'kind: SLO' document found")
    return [_import_slo(doc, by_kind, model, environment, source) for doc in slos]


def _name(doc: dict[str, Any]) -> str:
    return str((doc.get("metadata") or {}).get("name") or "")


def _import_slo(
    doc: dict[str, Any],
    refs: dict[str, dict[str, dict[str, Any]]],
    model: str | None,
    environment: str | None,
    source: str,
) -> tuple[str, SloSpec]:
    where = f"{source}: SLO {_name(doc)!r}"
    ann = (doc.get("metadata") or {}).get("annotations") or {}
    spec = doc.get("spec") or {}
    model_name = ann.get(f"{ANN}model") or model or spec.get("service")
    env = ann.get(f"{ANN}environment") or environment
    if not model_name or not env:
        raise InvalidInput(f"{where}: name the model and environment (--model/--env) or annotate them")
    indicator = spec.get("indicator")
    if not indicator and spec.get("indicatorRef"):
        indicator = refs.get("SLI", {}).get(str(spec["indicatorRef"]))
        if indicator is None:
            raise InvalidInput(f"{where}: indicatorRef {spec['indicatorRef']!r} names no SLI document")
    if not isinstance(indicator, dict):
        raise InvalidInput(f"{where}: no indicator (inline or indicatorRef to an SLI document)")
    objectives = spec.get("objectives") or []
    if not isinstance(objectives, list) or len(objectives) != 1 or not isinstance(objectives[0], dict):
        raise InvalidInput(f"{where}: ModelPilot evaluates one objective per SLO, this one has {len(objectives)}")
    objective = objectives[0]
    windows = spec.get("timeWindow") or [{"duration": "30d", "isRolling": True}]
    window = windows[0] if isinstance(windows, list) and windows and isinstance(windows[0], dict) else {}
    if window.get("calendar") or window.get("isRolling") is False:
        raise InvalidInput(f"{where}: calendar-aligned time windows are not supported; ModelPilot's windows roll")
    budgeting = spec.get("budgetingMethod") or "Occurrences"
    if budgeting not in ("Occurrences", "Timeslices"):
        raise InvalidInput(f"{where}: budgetingMethod {budgeting} is not supported (Occurrences or Timeslices)")
    try:
        sli = _import_sli(indicator, objective, budgeting)
        return str(model_name), SloSpec(
            name=ann.get(f"{ANN}slo") or _slug(_name(doc), str(model_name), str(env)),
            environment=str(env),
            objective=_target(objective),
            window=parse_duration(str(window["duration"])),
            sli=sli,
            alerts=_import_alerts(spec.get("alertPolicies") or [], refs),
            description=spec.get("description") or "",
            budget_scope=ann.get(f"{ANN}budget-scope") or "environment",
        )
    except (ValidationError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{where}: cannot map to a ModelPilot SLO: {exc}") from None


def _target(objective: dict[str, Any]) -> float:
    """The objective's target: ``target`` (a fraction) or ``targetPercent`` (a percentage)."""
    if objective.get("target") is not None:
        return float(objective["target"])
    if objective.get("targetPercent") is not None:
        return float(objective["targetPercent"]) / 100
    raise ValueError("the objective needs target (e.g. 0.995) or targetPercent (e.g. 99.5)")


def _import_sli(indicator: dict[str, Any], objective: dict[str, Any], budgeting: str | None) -> SliSpec:
    ann = (indicator.get("metadata") or {}).get("annotations") or {}
    if f"{ANN}sli" in ann:
        return SliSpec.model_validate(json.loads(ann[f"{ANN}sli"]))
    body = indicator.get("spec") or {}
    if "ratioMetric" in body:
        ratio = body["ratioMetric"]
        parts = {k: _import_metric(ratio[k]) for k in ("good", "bad", "total") if k in ratio}
        src = next(iter(parts.values()))[0]
        return SliSpec(kind="ratio", source=src, **{k: q for k, (_s, q) in parts.items()})
    if "thresholdMetric" in body and budgeting != "Timeslices":
        raise ValueError(
            "a thresholdMetric counted per occurrence cannot be evaluated from counters; use Timeslices, or a "
            "ModelPilot threshold SLI (a histogram and threshold_ms)"
        )
    if "thresholdMetric" in body:
        src, query = _import_metric(body["thresholdMetric"])
        return SliSpec(
            kind="quality",
            source=src,
            metric=str(objective.get("displayName") or "value"),
            value=query,
            op=">=" if objective.get("op") in ("gte", "gt") else "<=",
            limit=float(objective["value"]) if objective.get("value") is not None else _no_value(),
            timeslice=objective.get("timeSliceWindow") or "1h",
        )
    raise ValueError("the indicator needs a ratioMetric, or a thresholdMetric with budgetingMethod Timeslices")


def _no_value() -> float:
    raise ValueError("a Timeslices thresholdMetric objective needs value (the per-slice limit)")


def _import_metric(part: dict[str, Any]) -> tuple[str, MetricQuery]:
    ms = part["metricSource"]
    if "metricSourceRef" in ms:
        raise ValueError(
            f"metricSourceRef {ms['metricSourceRef']!r}: DataSource documents are not supported, inline it"
        )
    src = _SOURCES.get(str(ms.get("type", "")).lower())
    if src is None:
        raise ValueError(f"unsupported metricSource type {ms.get('type')!r}; use one of {', '.join(_TYPES.values())}")
    spec = ms.get("spec") or {}
    if src == "prometheus":
        return src, MetricQuery(query=spec["query"])
    if src in ("local", "quality"):
        return src, MetricQuery(query=spec["series"])
    dims = {d["name"]: d["value"] for d in spec.get("dimensions") or []}
    return src, MetricQuery(
        namespace=spec["namespace"], metric_name=spec["metricName"], dimensions=dims, stat=spec.get("stat") or "Sum"
    )


def _import_alerts(policies: list[Any], refs: dict[str, dict[str, dict[str, Any]]]) -> list[BurnRateRule] | None:
    rules: list[BurnRateRule] = []
    defaults = bool(policies)
    for item in policies:
        if not isinstance(item, dict):
            raise ValueError("alertPolicies must hold AlertPolicy documents or alertPolicyRef entries")
        if "alertPolicyRef" in item:
            policy = refs.get("AlertPolicy", {}).get(str(item["alertPolicyRef"]))
            if policy is None:
                raise ValueError(f"alertPolicyRef {item['alertPolicyRef']!r} names no AlertPolicy document")
        else:
            policy = item
        annotations = ((policy or {}).get("metadata") or {}).get("annotations") or {}
        defaults = defaults and annotations.get(f"{ANN}defaults") == "true"
        for cond in ((policy or {}).get("spec") or {}).get("conditions") or []:
            if "conditionRef" in cond:
                ref = str(cond["conditionRef"])
                cond = refs.get("AlertCondition", {}).get(ref)
                if cond is None:
                    raise ValueError(f"conditionRef {ref!r} names no AlertCondition document")
            body = cond.get("spec") or {}
            c = body.get("condition") or {}
            if c.get("kind") != "burnrate":
                continue
            long_s = parse_duration(str(c["lookbackWindow"]))
            short = ((cond.get("metadata") or {}).get("annotations") or {}).get(f"{ANN}short-window")
            rules.append(
                BurnRateRule(
                    severity="page" if str(body.get("severity", "")).lower() in _PAGE_WORDS else "ticket",
                    burn_rate=float(c["threshold"]),
                    long_window=format_duration(long_s),
                    short_window=short or format_duration(max(60, long_s // 12 // 60 * 60)),
                )
            )
    return None if defaults or not rules else rules


def _slug(name: str, model: str, env: str) -> str:
    prefix = f"{model}-{env}-"
    slug = name[len(prefix) :] if name.startswith(prefix) else name
    return slug.lower().replace(" ", "-") or "slo"
