"""SLO check, and the rollback policy reacting to SLO burn, critical drift and cloud alarms.

* ``check_slos`` evaluates the SLOs, sets the ``modelpilot.slo.*`` gauges, stores
  the ``slo`` monitor status the promotion gates read, marks a version that
  starts breaching (``slo_breach`` audit record) and emits one ``SloBurnAlert``
  per firing SLO;
* ``on_slo_burn_alert`` / ``on_drift_detected`` roll back when the environment's
  rollback policy says so (conditional on the breaching version, idempotent on
  the alert, once per incident thanks to the cooldown);
* ``handle_alarm`` rolls back on a firing alarm named in the rollback policy and
  only records any other alarm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.domain.audit import AuditEntry
from modelpilot.service.lifecycle import rollback_model
from modelpilot.service.messagebus import Outcome
from modelpilot.service.slo import status
from modelpilot.service.slo.evaluation import evaluate_slos
from modelpilot.service.slo.rollback import apply_rollback, parse_time, plan_rollback, rollback_policy

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.commands import CheckSlos, HandleAlarm
    from modelpilot.domain.events import DriftDetected, SloBurnAlert
    from modelpilot.policy.slo import RollbackPolicy
    from modelpilot.service.messagebus import MessageBus, Services

__all__ = ["check_slos", "handle_alarm", "on_drift_detected", "on_slo_burn_alert"]


def check_slos(cmd: CheckSlos, svc: Services) -> Outcome:
    """Evaluate SLOs; publish gauges, monitor status, breach marks and burn alerts.

    A timer's redelivered tick is de-duplicated by the dispatch (its key is the tick), not here.
    """
    now = cmd.now or svc.clock()
    reports = evaluate_slos(svc, now, cmd.model, cmd.environment)
    events = [status.publish_gauges(r) for r in reports]
    status.store_status(svc, reports, now)
    alerts = [e for e in events if e is not None]
    data: dict[str, Any] = {
        "slos": [r.to_dict() for r in reports],
        "alerts": len(alerts),
        "at": now.isoformat(),
    }
    return Outcome("checked", f"checked {len(reports)} SLO(s): {len(alerts)} alerting", data, list(alerts))


def on_slo_burn_alert(event: SloBurnAlert, bus: MessageBus) -> Outcome | None:
    """Roll back when the environment's policy rolls back on this alert's severity."""
    policy = rollback_policy(bus.services, event.model, event.environment)
    if policy is None or not policy.rolls_back_on(event.severity):
        return None
    return _roll_back(
        bus,
        event,
        policy,
        actor="system:slo",
        trigger=f"slo:{event.alert_id}",
        evidence={"alert": event.to_dict()},
        alert_at=parse_time(event.alert_id.rpartition("@")[2]),
    )


def on_drift_detected(event: DriftDetected, bus: MessageBus) -> Outcome | None:
    """Roll back on critical drift when the environment's policy says so."""
    policy = rollback_policy(bus.services, event.model, event.environment)
    if policy is None or not policy.on_critical_drift or event.severity != "critical":
        return None
    return _roll_back(
        bus,
        event,
        policy,
        actor="system:drift",
        trigger=f"drift:{event.report_id}",
        evidence={"drift": event.to_dict()},
        alert_at=None,
    )


def _roll_back(
    bus: MessageBus,
    event: SloBurnAlert | DriftDetected,
    policy: RollbackPolicy,
    *,
    actor: str,
    trigger: str,
    evidence: dict[str, Any],
    alert_at: datetime | None,
) -> Outcome | None:
    """Plan and apply the rollback of the version ``event`` reports, with the event as evidence."""
    plan = plan_rollback(
        bus.services,
        model=event.model,
        environment=event.environment,
        from_version=event.version,
        policy=policy,
        actor=actor,
        trigger=trigger,
        reason=event.summary(),
        evidence=evidence,
    )
    return apply_rollback(bus, plan, alert_at=alert_at)


def handle_alarm(cmd: HandleAlarm, svc: Services) -> Outcome:
    """Roll back on a firing alarm named in the rollback policy; record any other alarm."""
    base = {"model": cmd.model, "environment": cmd.environment, "alarm": cmd.alarm_name}
    if cmd.model not in svc.registry.list_models():
        # one answer for an unknown model, whatever the alarm's state or the policy: no event, nothing recorded
        from modelpilot.exceptions import UnknownModel

        raise UnknownModel(f"unknown model {cmd.model!r} in alarm {cmd.alarm_name}", model=cmd.model)
    if cmd.state != "ALARM":
        return Outcome("noop", f"alarm {cmd.alarm_name} is {cmd.state}; nothing to do", base)
    svc.policy.check_environment(cmd.environment)
    policy = rollback_policy(svc, cmd.model, cmd.environment)
    trigger = cmd.trigger or f"alarm:{cmd.alarm_name}"
    if policy is None or not policy.alarm_matches(cmd.alarm_name):
        return _record_alarm(cmd, svc, trigger, base)
    plan = plan_rollback(
        svc,
        model=cmd.model,
        environment=cmd.environment,
        from_version=None,
        policy=policy,
        actor=cmd.actor,
        reason=cmd.reason or f"alarm {cmd.alarm_name} in ALARM",
        trigger=trigger,
        evidence={"alarm": cmd.alarm_name, **cmd.evidence},
    )
    if isinstance(plan, Outcome):
        return plan
    attributes = {
        "modelpilot.model": plan.model,
        "modelpilot.environment": plan.environment,
        "modelpilot.from_version": plan.from_version,
        "modelpilot.to_version": plan.to_version,
        "modelpilot.trigger": plan.trigger,
    }
    with telemetry.command_span("RollbackModel", attributes) as span:
        outcome = rollback_model(plan, svc)
        span.set_attribute("modelpilot.outcome", outcome.status)
    status.record_alarm_latency(svc, outcome, cmd.evidence)
    return outcome


def _record_alarm(cmd: HandleAlarm, svc: Services, trigger: str, base: dict[str, Any]) -> Outcome:
    if any(r.action == "alarm" and r.trigger == trigger for r in svc.registry.audit_records(cmd.model)):
        return Outcome("unchanged", f"alarm {cmd.alarm_name} ({trigger}) was already recorded", base)
    svc.registry.append_audit(
        AuditEntry(
            model=cmd.model,
            actor=cmd.actor,
            action="alarm",
            timestamp=svc.clock(),
            environment=cmd.environment,
            reason=f"alarm {cmd.alarm_name} in ALARM; not in the rollback policy of {cmd.environment}: recorded only",
            trigger=trigger,
            evidence={"alarm": cmd.alarm_name, **cmd.evidence},
        )
    )
    return Outcome(
        "recorded",
        f"alarm {cmd.alarm_name} recorded; the rollback policy of {cmd.environment} does not roll back on it",
        base,
    )
