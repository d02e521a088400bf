"""SageMaker Model Registry: "SageMaker Model Package State Change" → register, promote or reject."""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws import sagemaker as aws_sagemaker
from modelpilot.entrypoints.aws.runtime import lambda_entry, reply, run_once


def _apply(detail: aws_sagemaker.SageMakerDetail) -> dict[str, Any]:
    bus = get_bus()
    outcome = bus.handle(aws_sagemaker.to_command(detail))
    follow = aws_sagemaker.follow_up(detail, outcome)
    if follow is not None:
        outcome.follow_ups.append(bus.handle(follow))
    return reply(outcome)


@lambda_entry("sagemaker_registry")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Apply one model package state change, once per (ARN, approval status)."""
    detail = aws_sagemaker.parse(event)
    return run_once("sagemaker", aws_sagemaker.idempotency_key(detail), lambda: _apply(detail), context)
