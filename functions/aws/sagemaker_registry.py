"""SageMaker Model Registry: "SageMaker Model Package State Change" → register, promote or reject."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.entrypoints.aws import sagemaker
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("sagemaker_registry")
def handler(event: dict[str, Any], context: Any) -> Delivery | list[Delivery]:
    """Apply one model package state change: once per (ARN, approval status), and an approved lifecycle stage
    once per (ARN, stage, stage status, modification time)."""
    return sagemaker.deliveries(event)


init_phase(
    "RegisterModel", "PromoteModel", "RejectModel", "ApplySourceStage", modules=("modelpilot.service.drift.batch",)
)
