"""Promote function, invoked from the console or ``aws lambda invoke``.

Payloads: ``{"action": "promote", "model": "churn", "environment": "staging", "version": 3, "reason": "…"}``
or ``{"action": "approve", "model": "churn", "version": 3, "environment": "prod", "comment": "…"}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.entrypoints.aws import console
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("promote")
def handler(event: dict[str, Any], context: Any) -> Delivery:
    """Validate the payload, then promote or approve once per invocation."""
    return console.promote_delivery(event, context)


init_phase("PromoteModel", "ApproveModel")
