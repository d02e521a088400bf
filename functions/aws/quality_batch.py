"""Quality batch: an EventBridge Scheduler tick or a console ``{"action": "quality", ...}`` → RunQualityBatch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.entrypoints.aws import console, quality
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("quality_batch")
def handler(event: dict[str, Any], context: Any) -> Delivery:
    """Run the quality batch once per (schedule, scheduled time) or per console invocation."""
    return quality.quality_delivery(
        event, request_id=context.aws_request_id, console_actor=console.console_actor(context)
    )


init_phase("RunQualityBatch", modules=("modelpilot.service.quality.batch",))
