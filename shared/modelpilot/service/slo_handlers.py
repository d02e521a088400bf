"""SLO handlers and the rollback policy (the SLO engine fills these in).

Until the rollback policy exists, ``handle_alarm`` rolls back on any alarm in
ALARM state, conditionally and idempotently on the alarm's trigger.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.domain.commands import RollbackModel
from modelpilot.service.handlers import rollback_model
from modelpilot.service.messagebus import Outcome

if TYPE_CHECKING:
    from modelpilot.domain.commands import HandleAlarm
    from modelpilot.service.messagebus import Services


def handle_alarm(cmd: HandleAlarm, svc: Services) -> Outcome:
    """Roll back ``cmd.environment`` when the alarm is in ALARM state."""
    if cmd.state != "ALARM":
        return Outcome("noop", f"alarm {cmd.alarm_name} is {cmd.state}; nothing to do",
                       {"model": cmd.model, "environment": cmd.environment})
    return rollback_model(RollbackModel(
        model=cmd.model, environment=cmd.environment, actor=cmd.actor,
        reason=cmd.reason or f"alarm {cmd.alarm_name} in ALARM", trigger=cmd.trigger,
        evidence={"alarm": cmd.alarm_name, **cmd.evidence},
    ), svc)


def on_drift_detected(event: Any, bus: Any) -> None:
    """React to drift (rollback policy)."""
    return None


def on_slo_burn_alert(event: Any, bus: Any) -> None:
    """React to an SLO burn alert (rollback policy)."""
    return None
