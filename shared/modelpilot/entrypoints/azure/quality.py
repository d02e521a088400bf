"""The quality batch on Azure: its timer and label files landing in the models container.

* the timer → ``RunQualityBatch`` of every monitored model, keyed by the minute it ran in (a double firing
  within one minute runs once, as the other timers);
* ``Microsoft.Storage.BlobCreated`` of a blob under ``.../feedback/<model>/<env>/YYYY/MM/DD/HH/`` in the models
  container → ``RunQualityBatch`` of the one window holding that hour, keyed by the blob and its ETag; other
  blobs are ignored (``None``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelpilot.domain.commands import RunQualityBatch
from modelpilot.entrypoints.azure.envelope import validation_message
from modelpilot.entrypoints.azure.events import BLOB_CREATED, Translation, blob_location
from modelpilot.entrypoints.feedback import feedback_command
from modelpilot.exceptions import InvalidEvent
from modelpilot.service.dispatch import Delivery

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.entrypoints.azure.envelope import Envelope

__all__ = ["TIMER_ACTOR", "feedback_translation", "quality_timer"]

TIMER_ACTOR = "system:timer"


def quality_timer(now: datetime, *, past_due: bool = False) -> Delivery:
    """The quality batch of a timer firing at ``now``, keyed by the minute."""
    key = f"timer:quality:{now:%Y-%m-%dT%H:%M}"
    source = "timer quality" + (" (past due)" if past_due else "")
    return Delivery(source, RunQualityBatch(actor=TIMER_ACTOR, end=now, trigger=key), key)


class _BlobCreated(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str = Field(min_length=1)
    e_tag: str | None = Field(default=None, alias="eTag")
    sequencer: str | None = None


def feedback_translation(env: Envelope, *, container: str) -> Translation | None:
    """Translate a BlobCreated event of a label file; ``None`` for any other blob."""
    if env.type != BLOB_CREATED:
        raise InvalidEvent(f"event {env.id} is {env.type!r}; this function takes {BLOB_CREATED}", event_id=env.id)
    try:
        data = _BlobCreated.model_validate(env.data)
    except ValidationError as exc:
        raise InvalidEvent(f"{env.type} event {env.id}: {validation_message(exc)}", event_id=env.id) from None
    blob_container, name = blob_location(env, data.url)
    if blob_container != container:
        return None
    key = f"feedback:{blob_container}/{name}@{data.e_tag or data.sequencer or env.id}"
    command = feedback_command(name, key, actor="system:eventgrid")
    return None if command is None else Translation(command, key)
