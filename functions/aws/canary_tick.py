"""Canary tick: an EventBridge Scheduler tick or a console ``{"action": "canary_tick", ...}`` → AdvanceCanaries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.entrypoints.aws import console, schedule
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("canary_tick")
def handler(event: dict[str, Any], context: Any) -> Delivery:
    """Advance the due canaries once per (schedule, scheduled time) or per console invocation."""
    return schedule.canary_delivery(
        event, request_id=context.aws_request_id, console_actor=console.console_actor(context)
    )


init_phase("AdvanceCanaries", metrics_sources=True)
