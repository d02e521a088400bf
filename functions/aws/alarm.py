"""CloudWatch alarm (EventBridge state change or SNS alarm action) → HandleAlarm for the alarm's model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws import alarm
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("alarm")
def handler(event: dict[str, Any], context: Any) -> list[Delivery]:
    """Send ``HandleAlarm`` for every alarm named or tagged for a model/environment; ignore others."""
    return alarm.deliveries(event, get_bus().services.alarm_tags)


init_phase("HandleAlarm", "RollbackModel", alarm_tags=True)
