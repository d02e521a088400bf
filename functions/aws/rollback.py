"""Rollback function, invoked from the console or ``aws lambda invoke``.

Payload: ``{"action": "rollback", "model": "churn", "environment": "prod", "reason": "…", "to_version": 2}``.
"""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws import console as aws_console
from modelpilot.entrypoints.aws.runtime import lambda_entry, reply, run_once


@lambda_entry("rollback")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Validate the payload, then roll back once per invocation."""
    request = context.aws_request_id
    command = aws_console.rollback_command(event, aws_console.console_actor(context), f"console:{request}")
    return run_once("console", {"request": request}, lambda: reply(get_bus().handle(command)), context)
