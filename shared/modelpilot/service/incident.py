"""Incidents: the timeline of what happened to a model in an environment, from the audit and the monitors.

:func:`incident_timeline` gathers it (``modelpilot incident``, the operator APIs);
:mod:`modelpilot.service.incident_render` writes it as a Markdown post-incident review
draft and as a self-contained HTML page.

:func:`release_traceparent` is the link between a release and what later judges it: an
alarm (which carries no trace context of its own) continues the trace recorded with the
audit record of the alias move that put the live version live.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelpilot.domain.audit import AuditRecord
    from modelpilot.ports import RegistryStore
    from modelpilot.service.messagebus import Services

__all__ = ["incident_timeline", "release_traceparent"]

#: audit actions that move an alias
MOVES = ("promote", "rollback")


def release_traceparent(registry: RegistryStore, model: str, environment: str) -> str | None:
    """Return the W3C ``traceparent`` recorded when ``environment``'s live version went live, if any."""
    alias = registry.get_alias(model, environment)
    if alias is None:
        return None
    for record in reversed(registry.audit_records(model)):
        if record.environment == environment and record.action in MOVES and record.to_version == alias.version:
            traceparent = record.evidence.get("traceparent")
            return traceparent if isinstance(traceparent, str) else None
    return None


# -- the timeline -------------------------------------------------------------------------------
#: how many instants the burn-rate chart samples across the incident
CHART_POINTS = 48
#: what an audit action means on the timeline
KINDS = {
    "register": "registered",
    "promote": "promoted",
    "approve": "approved",
    "reject": "rejected",
    "rollback": "rolled back",
    "slo_breach": "SLO breach",
    "alarm": "alarm",
}


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _trace_id(evidence: dict[str, Any]) -> str | None:
    traceparent = evidence.get("traceparent")
    if isinstance(traceparent, str) and traceparent.count("-") == 3:
        return traceparent.split("-")[1]
    return None


def _alert_time(evidence: dict[str, Any]) -> datetime | None:
    """When the alert that a record carries as evidence fired (SLO alert id, alarm state change)."""
    from modelpilot.service.slo.rollback import parse_time

    alert = evidence.get("alert")
    if isinstance(alert, dict) and isinstance(alert.get("alert_id"), str):
        return parse_time(alert["alert_id"].rpartition("@")[2])
    for key in ("state_changed_at", "timestamp", "time"):
        when = parse_time(evidence.get(key))
        if when is not None:
            return when
    return None


def _default_range(records: list[AuditRecord], environment: str, now: datetime) -> tuple[datetime, datetime]:
    """The last rollback of ``environment``, from 30 min before its version went live to 30 min after."""
    rollbacks = [r for r in records if r.action == "rollback" and r.environment == environment]
    if not rollbacks:
        return now - timedelta(days=1), now
    last = rollbacks[-1]
    live = [
        r
        for r in records
        if r.action in MOVES
        and r.environment == environment
        and r.to_version == last.from_version
        and r.timestamp <= last.timestamp
    ]
    start = live[-1].timestamp if live else last.timestamp - timedelta(hours=6)
    return start - timedelta(minutes=30), last.timestamp + timedelta(minutes=30)


def incident_timeline(
    svc: Services,
    model: str,
    environment: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Return the timeline of an incident of ``model`` in ``environment`` (JSON-friendly).

    Without ``start``/``end`` the incident is the environment's last rollback: from half an
    hour before the rolled-back version went live to half an hour after the rollback.
    Everything comes from the audit log (promotions, approvals, rollbacks with their
    evidence, SLO breaches, alarms, trace ids), the alias history (the versions live over
    time), the SLO metrics sources (burn rates sampled across the incident) and the drift
    reports of the environment.
    """
    from modelpilot.exceptions import InvalidInput, UnknownModel

    svc.policy.check_environment(environment)
    if model not in svc.registry.list_models():
        raise UnknownModel(f"unknown model {model!r}", model=model)
    records = svc.registry.audit_records(model)
    default_start, default_end = _default_range(records, environment, svc.clock())
    start, end = start or default_start, end or default_end
    if end <= start:
        raise InvalidInput(f"--from {start.isoformat()} is not before --to {end.isoformat()}")
    events: list[dict[str, Any]] = []
    for record in records:
        if not (start <= record.timestamp <= end) or record.environment not in (environment, None):
            continue
        events.append(
            {
                "at": record.timestamp.isoformat(),
                "kind": record.action,
                "label": KINDS.get(record.action, record.action),
                "actor": record.actor,
                "from_version": record.from_version,
                "to_version": record.to_version,
                "reason": record.reason,
                "trigger": record.trigger,
                "trace_id": _trace_id(record.evidence),
                "audit_seq": record.seq,
                "evidence": record.evidence,
            }
        )
    events += _drift_events(svc, model, environment, start, end)
    events.sort(key=lambda e: (e["at"], e.get("audit_seq") or 0))
    versions = _versions(svc, model, environment, start, end)
    burn = _burn_chart(svc, model, environment, start, end, versions)
    measures = _measures(events, burn, versions)
    return {
        "model": model,
        "environment": environment,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "events": events,
        "versions": versions,
        "burn": burn,
        "rollbacks": [e for e in events if e["kind"] == "rollback"],
        "measures": measures,
        "trace_ids": sorted({e["trace_id"] for e in events if e.get("trace_id")}),
    }


def _versions(svc: Services, model: str, environment: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The versions live in ``environment`` between ``start`` and ``end``, as consecutive segments."""
    segments: list[dict[str, Any]] = []
    current: int | None = None
    since = start
    for change in svc.registry.alias_history(model, environment):
        if change.at <= start:
            current = change.to_version
            continue
        if change.at > end:
            break
        if current is not None:
            segments.append({"version": current, "from": since.isoformat(), "to": change.at.isoformat()})
        current, since = change.to_version, change.at
    if current is not None:
        segments.append({"version": current, "from": since.isoformat(), "to": end.isoformat()})
    return segments


def _version_at(versions: list[dict[str, Any]], when: datetime) -> int | None:
    for segment in versions:
        if datetime.fromisoformat(segment["from"]) <= when <= datetime.fromisoformat(segment["to"]):
            return int(segment["version"])
    return None


def _burn_chart(
    svc: Services, model: str, environment: str, start: datetime, end: datetime, versions: list[dict[str, Any]]
) -> dict[str, Any]:
    """Burn rates of the environment's SLOs at :data:`CHART_POINTS` instants, on the version live at each."""
    from modelpilot.domain.slo import WindowCounts, burn_rate
    from modelpilot.exceptions import ModelPilotError
    from modelpilot.policy.slo import format_window

    series: list[dict[str, Any]] = []
    thresholds: list[dict[str, Any]] = []
    step = (end - start) / (CHART_POINTS - 1)
    instants = [start + step * i for i in range(CHART_POINTS)]
    for spec in svc.policy.model_policy(model).slos:
        if spec.environment != environment:
            continue
        page = [r for r in spec.rules if r.severity == "page"] or spec.rules
        windows = sorted({s for r in page for s in (r.long_seconds, r.short_seconds)})
        thresholds += [
            {
                "slo": spec.name,
                "severity": r.severity,
                "long": r.long_window,
                "short": r.short_window,
                "burn_rate": r.burn_rate,
            }
            for r in page
        ]
        source = svc.metrics_sources.get(spec.sli.source)
        if source is None:
            series.append({"slo": spec.name, "error": f"no metrics source {spec.sli.source!r}"})
            continue
        requests = []
        keys = []
        for when in instants:
            version = _version_at(versions, when)
            if version is None:
                continue
            query = spec.query(model, version=version)
            for window in windows:
                requests.append((query, when - timedelta(seconds=window), when))
                keys.append((when, window))
        try:
            counts = source.counts_many(requests) if requests else []
        except ModelPilotError as exc:
            series.append({"slo": spec.name, "error": str(exc)})
            continue
        points: dict[datetime, dict[str, float | None]] = {}
        for (when, window), got in zip(keys, counts, strict=True):
            rate = burn_rate(WindowCounts(got.good, got.total, got.points), spec.objective)
            points.setdefault(when, {})[format_window(window)] = rate
        series.append(
            {
                "slo": spec.name,
                "objective": spec.objective,
                "windows": [format_window(w) for w in windows],
                "points": [{"at": w.isoformat(), "rates": r} for w, r in sorted(points.items())],
            }
        )
    return {"series": series, "thresholds": thresholds}


def _measures(events: list[dict[str, Any]], burn: dict[str, Any], versions: list[dict[str, Any]]) -> dict[str, Any]:
    """When the impact began, when it was detected and when it was rolled back, and the times between."""
    rollbacks = [e for e in events if e["kind"] == "rollback"]
    rollback = rollbacks[-1] if rollbacks else None
    rolled_back_at = datetime.fromisoformat(rollback["at"]) if rollback else None
    bad_version = rollback["from_version"] if rollback else None
    released = [e for e in events if e["kind"] in MOVES and bad_version is not None and e["to_version"] == bad_version]
    released_at = datetime.fromisoformat(released[-1]["at"]) if released else None
    impact_at: datetime | None = None
    for series in burn["series"]:
        for point in series.get("points", []):
            at = datetime.fromisoformat(point["at"])
            if released_at is not None and at < released_at:
                continue
            if rolled_back_at is not None and at > rolled_back_at:
                break
            if any(rate is not None and rate > 1 for rate in point["rates"].values()):
                impact_at = at if impact_at is None else min(impact_at, at)
                break
    impact_at = impact_at or released_at
    detections: list[datetime] = []
    for event in events:
        if event["kind"] in ("slo_breach", "alarm", "rollback"):
            when: datetime | None = _alert_time(event["evidence"]) or (
                datetime.fromisoformat(event["at"]) if event["kind"] != "rollback" else None
            )
            if when is not None and (impact_at is None or when >= impact_at):
                detections.append(when)
    detected_at = min(detections) if detections else None

    def seconds(a: datetime | None, b: datetime | None) -> float | None:
        return None if a is None or b is None else max((b - a).total_seconds(), 0.0)

    return {
        "bad_version": bad_version,
        "released_at": _iso(released_at),
        "impact_started_at": _iso(impact_at),
        "detected_at": _iso(detected_at),
        "rolled_back_at": _iso(rolled_back_at),
        "time_to_detect_seconds": seconds(impact_at, detected_at),
        "time_to_roll_back_seconds": seconds(detected_at, rolled_back_at),
    }


def _drift_events(svc: Services, model: str, environment: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The drift reports of ``environment`` whose window ended inside the incident."""
    import json

    from modelpilot.exceptions import ModelPilotError
    from modelpilot.service.slo.rollback import parse_time

    base = svc.artifacts.join(svc.data_root, "reports", model, environment)
    try:
        objects = [o for o in svc.artifacts.list(base) if o.uri.endswith(".json")]
    except ModelPilotError:
        return []
    found = []
    for info in objects:
        try:
            data = json.loads(svc.artifacts.read_bytes(info.uri))
        except (ModelPilotError, ValueError):
            continue
        window = data.get("window") if isinstance(data.get("window"), dict) else {}
        when = parse_time(window.get("end")) or info.last_modified
        if when is None or not (start <= when <= end):
            continue
        found.append(
            {
                "at": when.isoformat(),
                "kind": "drift",
                "label": f"drift report ({data.get('severity', '?')})",
                "actor": "system:drift",
                "from_version": None,
                "to_version": None,
                "reason": ", ".join(str(f) for f in data.get("drifted_features") or []) or "no drifted feature",
                "trigger": data.get("report_id"),
                "trace_id": None,
                "audit_seq": None,
                "evidence": {"report_id": data.get("report_id"), "uri": info.uri, "severity": data.get("severity")},
            }
        )
    return found
