"""Step Functions payloads of the drift fan-out (``infra/aws/drift.asl.json``) → the shared partial/merge steps.

* :func:`execution_input` (from ``modelpilot.service.drift.window``, where the drift batch
  calls it) is what a planner starts the state machine with: it
  writes the window's batch list (the Distributed Map's ``ItemReader`` source)
  under the window's ``partials/`` prefix and names where ``ResultWriter`` writes.
* :func:`partial_reply` serves one Distributed Map child: ``{"BatchInput":
  {"plan": …}, "Items": [batch, …]}`` → ``{"partials": [reference, …]}``. Each
  reference holds the partial inline when the child's whole reply stays under
  the 256 KB state payload limit, else the URI it was written to (once, by key).
* :func:`merge_command` serves the merge: it reads the batch list and the
  ``ResultWriter`` manifest and returns the ``MergeDriftWindow`` command that
  loads every partial, merges and reports (through the bus, so ``DriftDetected``
  is published and reacted to like a single pass's).

Every object read or written lives under ``<data_root>/partials/<model>/<env>/<report id>/``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from modelpilot.domain.commands import MergeDriftWindow
from modelpilot.entrypoints._validation import validate
from modelpilot.exceptions import InvalidEvent
from modelpilot.service.drift.fanout import Batch, WindowPlan
from modelpilot.service.drift.window import (
    INLINE_LIMIT,
    execution_input,
    run_partial,
    store_partial,
    window_prefix,
)

if TYPE_CHECKING:
    from modelpilot.service.dispatch import Delivery
    from modelpilot.service.messagebus import Services

__all__ = ["ACTOR", "execution_input", "merge_command", "merge_delivery", "partial_reply", "window_prefix"]

ACTOR = "system:drift-fanout"
#: room left in a child's reply for everything but the inline partials
_REPLY_MARGIN = 8 * 1024


class _Location(BaseModel):
    model_config = ConfigDict(extra="ignore")
    Bucket: str = Field(min_length=3)
    Key: str = Field(min_length=1)


class _BatchInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: dict[str, Any]


class _Child(BaseModel):
    model_config = ConfigDict(extra="forbid")
    BatchInput: _BatchInput
    Items: list[dict[str, Any]] = Field(min_length=1)


class _Merge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: dict[str, Any]
    batches: _Location
    results: _Location


def _inside(svc: Services, plan: WindowPlan, bucket: str, key: str) -> str:
    uri = f"s3://{bucket}/{key}"
    if not uri.startswith(window_prefix(svc, plan) + "/"):
        raise InvalidEvent(f"{uri} is outside the window's prefix {window_prefix(svc, plan)}/", field="<root>")
    return uri


def partial_reply(svc: Services, event: dict[str, Any]) -> dict[str, Any]:
    """Read the child's batches and return references to their partials."""
    child = validate(_Child, event, "drift partial payload")
    plan = WindowPlan.from_dict(child.BatchInput.plan)
    batches = [Batch.from_dict(item) for item in child.Items]
    limit = max(0, (INLINE_LIMIT - _REPLY_MARGIN) // len(batches))
    refs = [store_partial(svc, plan, b, run_partial(svc, plan, b), inline_limit=limit) for b in batches]
    return {"report_id": plan.report_id, "partials": refs}


def merge_command(svc: Services, event: dict[str, Any], *, actor: str = ACTOR) -> MergeDriftWindow:
    """Return the merge command: the batch list and every child's partial references, read from S3."""
    merge = validate(_Merge, event, "drift merge payload")
    plan = WindowPlan.from_dict(merge.plan)
    listing = _inside(svc, plan, merge.batches.Bucket, merge.batches.Key)
    batches = json.loads(svc.artifacts.read_bytes(listing, max_bytes=64 * 1024 * 1024))
    manifest_uri = _inside(svc, plan, merge.results.Bucket, merge.results.Key)
    manifest = json.loads(svc.artifacts.read_bytes(manifest_uri))
    bucket = manifest.get("DestinationBucket", merge.results.Bucket)
    refs: list[dict[str, Any]] = []
    for entry in manifest.get("ResultFiles", {}).get("SUCCEEDED", []):
        results = json.loads(svc.artifacts.read_bytes(_inside(svc, plan, bucket, entry["Key"]), max_bytes=1 << 30))
        for execution in results:
            refs.extend(json.loads(execution["Output"])["partials"])
    return MergeDriftWindow(
        actor=actor, plan=merge.plan, batches=tuple(batches), partials=tuple(refs), trigger="step_functions"
    )


def merge_delivery(event: Any) -> Delivery:
    """Return the merge's delivery (the bus's services read the batch list and results), once per window."""
    from modelpilot.bootstrap import get_bus
    from modelpilot.service.dispatch import Delivery

    command = merge_command(get_bus().services, event if isinstance(event, dict) else {})
    plan = WindowPlan.from_dict(command.plan)
    return Delivery("drift state machine", command, f"drift-merge:{plan.report_id}")
