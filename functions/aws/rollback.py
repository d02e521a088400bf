"""Rollback function, invoked from the console or ``aws lambda invoke``.

Payload: ``{"action": "rollback", "model": "churn", "environment": "prod", "reason": "…", "to_version": 2}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.entrypoints.aws import console
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("rollback")
def handler(event: dict[str, Any], context: Any) -> Delivery:
    """Validate the payload, then roll back once per invocation."""
    return console.rollback_delivery(event, context)


init_phase("RollbackModel")
