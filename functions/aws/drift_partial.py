"""Drift fan-out child: one Distributed Map child of the drift state machine → its batches' partial profiles.

Payload (``infra/aws/drift.asl.json``, ``ItemBatcher``): ``{"BatchInput": {"plan": …}, "Items": [batch, …]}``;
reply: ``{"report_id", "partials": [reference, …]}`` (inline, or written once under the batch's key).
A bad payload raises ``InvalidEvent``: the child fails, and the Map's tolerated-failure share decides.
No init phase: it would read the policy, which a child never needs (its role may not read it).
"""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws.drift_fanout import partial_reply


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Read the child's batches into partial profiles; return their references."""
    return partial_reply(get_bus().services, event)
