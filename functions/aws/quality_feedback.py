"""Label files: an object lands under <data root>/feedback/<model>/<env>/YYYY/MM/DD/HH/ → the join of its window."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.entrypoints.aws import quality
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("quality_feedback")
def handler(event: dict[str, Any], context: Any) -> list[Delivery]:
    """Run the quality batch of each uploaded label file's window (once per object version)."""
    return quality.feedback_deliveries(event)


init_phase("RunQualityBatch", modules=("modelpilot.service.quality.batch",))
