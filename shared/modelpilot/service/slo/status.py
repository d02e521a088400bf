"""What an SLO check leaves behind: gauges, burn alerts, monitor status and breach marks."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any, Literal

from modelpilot import telemetry
from modelpilot.domain.audit import AuditEntry
from modelpilot.domain.events import SloBurnAlert
from modelpilot.domain.model import MonitorStatus
from modelpilot.policy.slo import format_window
from modelpilot.service.slo.rollback import BREACH_ACTION, parse_time, record_latency

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.service.messagebus import Outcome, Services
    from modelpilot.service.slo.evaluation import SloReport

__all__ = ["alert_id", "publish_gauges", "record_alarm_latency", "store_status"]

BURN_GAUGE = "modelpilot.slo.burn_rate"
BUDGET_GAUGE = "modelpilot.slo.error_budget_remaining"
SYSTEM_ACTOR = "system:slo"


def alert_id(report: SloReport, severity: str, long_window: int) -> str:
    """Return the alert's id: the same check (same SLO, version, rule and time) gives the same id."""
    return (
        f"{report.model}/{report.environment}/{report.spec.name}/v{report.version}/{severity}/"
        f"{format_window(long_window)}@{report.at.isoformat()}"
    )


def publish_gauges(report: SloReport) -> SloBurnAlert | None:
    """Set the burn-rate and budget gauges of ``report``; return its burn alert, if a rule fires."""
    attrs = {"model": report.model, "environment": report.environment, "slo": report.spec.name}
    for window, rate in report.burn_rates.items():
        if rate is not None:
            telemetry.gauge_set(BURN_GAUGE, rate, {**attrs, "window": format_window(window)})
    if report.budget_remaining is not None:
        telemetry.gauge_set(BUDGET_GAUGE, report.budget_remaining, {**attrs, "window": report.spec.window})
    rule = report.firing
    if rule is None:
        return None
    return SloBurnAlert(
        model=report.model,
        environment=report.environment,
        version=report.version,
        slo=report.spec.name,
        severity=rule.severity,
        long_window=format_window(rule.long_window),
        short_window=format_window(rule.short_window),
        burn_rate_long=float(rule.burn_long or 0.0),
        burn_rate_short=float(rule.burn_short or 0.0),
        threshold=rule.threshold,
        budget_remaining=report.budget_remaining if report.budget_remaining is not None else float("nan"),
        alert_id=alert_id(report, rule.severity, rule.long_window),
    )


def store_status(svc: Services, reports: list[SloReport], now: datetime) -> None:
    """Store one ``slo`` monitor status per (model, environment); mark versions that start breaching."""
    grouped: dict[tuple[str, str], list[SloReport]] = defaultdict(list)
    for report in reports:
        grouped[(report.model, report.environment)].append(report)
    for (model, env), group in grouped.items():
        live = [r for r in group if r.version is not None and r.error is None]
        if not live:
            continue
        version = live[0].version
        firing = [r for r in live if r.state == "alert"]
        state: Literal["ok", "alert"] = "alert" if firing else "ok"
        summary = "; ".join(_line(r) for r in firing) if firing else f"{len(live)} SLO(s) within their burn-rate rules"
        previous = svc.registry.get_monitor_status(model, env, "slo")
        details: dict[str, Any] = {"slos": [r.to_dict() for r in live]}
        starts = firing and (previous is None or previous.state != "alert" or previous.version != version)
        # the breach record first, the status (which says the breach is known) last: a failure between them
        # leaves the status as it was, so the retry sees the breach start again and finds it already recorded
        if starts and not _breach_recorded(svc, model, env, version, previous.updated_at if previous else None):
            svc.registry.append_audit(
                AuditEntry(
                    model=model,
                    actor=SYSTEM_ACTOR,
                    action=BREACH_ACTION,
                    timestamp=now,
                    environment=env,
                    to_version=version,
                    reason=summary,
                    evidence={"slos": [r.to_dict() for r in firing]},
                )
            )
        svc.registry.put_monitor_status(MonitorStatus(model, env, "slo", state, version, now, summary, details))


def _breach_recorded(svc: Services, model: str, env: str, version: int | None, since: datetime | None) -> bool:
    """True when the chain already has a breach of ``version`` in ``env`` after the last stored status."""
    return any(
        r.action == BREACH_ACTION
        and r.environment == env
        and r.to_version == version
        and (since is None or r.timestamp > since)
        for r in svc.registry.audit_records(model)
    )


def _line(report: SloReport) -> str:
    rule = report.firing
    assert rule is not None
    return (
        f"{report.spec.name} {rule.severity}: burn {rule.burn_long:.1f} over "
        f"{format_window(rule.long_window)}"
        f" and {rule.burn_short:.1f} over {format_window(rule.short_window)} (> {rule.threshold:g})"
    )


def record_alarm_latency(svc: Services, outcome: Outcome, evidence: dict[str, Any]) -> None:
    """Record alert-to-move latency for an alarm whose evidence carries its state-change time."""
    for key in ("state_changed_at", "timestamp", "time"):
        when = parse_time(evidence.get(key))
        if when is not None:
            record_latency(svc, outcome, when)
            return
