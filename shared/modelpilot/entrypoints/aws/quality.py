"""The quality batch on AWS: its timer, console invocations, and label files landing in the bucket.

* an EventBridge Scheduler tick (or a rule schedule) → ``RunQualityBatch`` of every monitored model, keyed by
  the schedule and its scheduled time (see :mod:`.schedule`);
* a console payload ``{"action": "quality", "model": "churn", "environment": "prod", ...}`` → the batch now,
  keyed by the invocation's request id;
* an S3 "Object Created" (EventBridge, or an S3 notification) under ``.../feedback/<model>/<env>/YYYY/MM/DD/HH/``
  → ``RunQualityBatch`` of that model, environment and the one window holding that hour, keyed by the object
  and its version; a label file outside the hourly layout runs the model's recent windows. Other objects are
  ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelpilot.domain.commands import RunQualityBatch
from modelpilot.entrypoints.aws import s3, schedule
from modelpilot.entrypoints.feedback import feedback_command
from modelpilot.service.dispatch import Delivery

__all__ = ["FEEDBACK_ACTOR", "ConsoleQuality", "feedback_deliveries", "quality_delivery"]

FEEDBACK_ACTOR = "system:feedback-upload"


class ConsoleQuality(BaseModel):
    """``{"action": "quality", ...}``: run the quality batch now."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["quality"]
    model: str | None = None
    environment: str | None = None
    windows: int | None = Field(default=None, gt=0, le=1000)
    data_uri: str | None = None
    feedback_uri: str | None = None


def quality_delivery(event: Any, *, request_id: str, console_actor: str) -> Delivery:
    """The quality batch a Scheduler tick or console payload asks for, once per (schedule, time) or request."""
    tick = schedule.parse_tick(event, ConsoleQuality, request_id=request_id, console_actor=console_actor)
    command = RunQualityBatch(
        actor=tick.actor,
        model=tick.model,
        environment=tick.environment,
        end=tick.at,
        windows=tick.extra.get("windows"),
        data_uri=tick.extra.get("data_uri"),
        feedback_uri=tick.extra.get("feedback_uri"),
        trigger=tick.trigger,
    )
    return Delivery(tick.trigger, command, f"quality:{tick.trigger}")


def feedback_deliveries(event: Any) -> list[Delivery]:
    """One delivery per uploaded object (newest per key); objects outside ``feedback/`` are ignored."""
    out = []
    for upload in s3.parse_uploads(event):
        key = upload.idempotency_key().replace("upload:", "feedback:", 1)
        command = feedback_command(upload.key, key, actor=FEEDBACK_ACTOR)
        ignored = "" if command is not None else f"{upload.uri} is not a label file under feedback/<model>/<env>/"
        out.append(Delivery(upload.uri, command, key, ignored))
    return out
