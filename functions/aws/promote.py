"""Promote function, invoked from the console or ``aws lambda invoke``.

Payloads: ``{"action": "promote", "model": "churn", "environment": "staging", "version": 3, "reason": "…"}``
or ``{"action": "approve", "model": "churn", "version": 3, "environment": "prod", "comment": "…"}``.
"""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws import console as aws_console
from modelpilot.entrypoints.aws.runtime import lambda_entry, reply, run_once


@lambda_entry("promote")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Validate the payload, then promote or approve once per invocation."""
    request = context.aws_request_id
    command = aws_console.promote_command(event, aws_console.console_actor(context), f"console:{request}")
    return run_once("console", {"request": request}, lambda: reply(get_bus().handle(command)), context)
