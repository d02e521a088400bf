"""Model upload: modelpilot.json lands under models/ (S3 notification or EventBridge) → register, promote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.entrypoints.aws import s3
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("model_upload")
def handler(event: dict[str, Any], context: Any) -> list[Delivery]:
    """Register every uploaded package (newest per key, in ``sequencer`` order); ignore other objects."""
    return s3.deliveries(event)


init_phase("RegisterModel", "PromoteModel", modules=("modelpilot.service.drift.batch",))
