"""CloudWatch alarm (EventBridge state change or SNS alarm action) → HandleAlarm for the alarm's model."""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws import alarm as aws_alarm
from modelpilot.entrypoints.aws.runtime import lambda_entry, reply, run_once

IGNORED = (
    f"names no model/environment: its name is not {aws_alarm.NAME_PREFIX}<model>/<environment>/… "
    f"and it has no {aws_alarm.MODEL_TAG} and {aws_alarm.ENVIRONMENT_TAG} tags"
)


@lambda_entry("alarm")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Send ``HandleAlarm`` for every alarm named or tagged for a model/environment; ignore others.

    A tag lookup that CloudWatch throttles or fails raises ``TransientError``, so Lambda retries the event.
    """
    alarms = aws_alarm.parse_alarms(event)
    tags = get_bus().services.extras.get("alarm_tags")
    results = []
    for alarm in alarms:
        command = aws_alarm.to_command(alarm, tags)
        if command is None:
            results.append({"status": "ignored", "message": f"alarm {alarm.name} {IGNORED}"})
            continue
        results.append(
            run_once("alarm", alarm.idempotency_key(), lambda c=command: reply(get_bus().handle(c)), context)
        )
    status = "ignored" if all(r["status"] == "ignored" for r in results) else "ok"
    return {"status": status, "results": results}
