"""SLO check: an EventBridge Scheduler tick or a console ``{"action": "slo_check", ...}`` → CheckSlos."""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws import console as aws_console
from modelpilot.entrypoints.aws import schedule as aws_schedule
from modelpilot.entrypoints.aws.runtime import lambda_entry, reply, run_once


@lambda_entry("slo_check")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Evaluate the SLOs once per (schedule, scheduled time) or per console invocation."""
    tick = aws_schedule.parse_tick(
        event,
        aws_schedule.ConsoleSlo,
        request_id=context.aws_request_id,
        console_actor=aws_console.console_actor(context),
    )
    command = aws_schedule.slo_command(tick)
    return run_once("slo", tick.key, lambda: reply(get_bus().handle(command)), context)
