"""CloudWatch alarm (EventBridge state change or SNS alarm action) → HandleAlarm for the alarm's model."""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints import aws_alarm
from modelpilot.entrypoints.aws_lambda import lambda_entry, reply, run_once


@lambda_entry("alarm")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Send ``HandleAlarm`` for every alarm named ``modelpilot/<model>/<environment>/…``; ignore others."""
    results = []
    for alarm in aws_alarm.parse_alarms(event):
        command = aws_alarm.to_command(alarm)
        if command is None:
            results.append({"status": "ignored", "message": f"alarm {alarm.name} names no model/environment"})
            continue
        results.append(run_once("alarm", alarm.idempotency_key(),
                                lambda c=command: reply(get_bus().handle(c)), context))
    status = "ignored" if all(r["status"] == "ignored" for r in results) else "ok"
    return {"status": status, "results": results}
