"""Drift batch: an EventBridge Scheduler tick or a console ``{"action": "drift", ...}`` → RunDriftBatch."""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws import console as aws_console
from modelpilot.entrypoints.aws import schedule as aws_schedule
from modelpilot.entrypoints.aws.runtime import lambda_entry, reply, run_once


@lambda_entry("drift_batch")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run the drift batch once per (schedule, scheduled time) or per console invocation."""
    tick = aws_schedule.parse_tick(
        event,
        aws_schedule.ConsoleDrift,
        request_id=context.aws_request_id,
        console_actor=aws_console.console_actor(context),
    )
    command = aws_schedule.drift_command(tick)
    return run_once("drift", tick.key, lambda: reply(get_bus().handle(command)), context)
