"""Drift fan-out merge: the drift state machine's last state → MergeDriftWindow (report, status, DriftDetected).

Payload (``infra/aws/drift.asl.json``, ``DriftMerge``): ``{"plan", "batches": {Bucket, Key}, "results":
ResultWriterDetails}``; the command runs through the one dispatch path, once per window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.entrypoints.aws.drift_fanout import merge_delivery
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import lambda_entry

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery


@lambda_entry("drift_merge")
def handler(event: dict[str, Any], context: Any) -> Delivery:
    """Merge the window's partials and report, once per window."""
    return merge_delivery(event)


init_phase("MergeDriftWindow", modules=("modelpilot.service.drift.window",))
