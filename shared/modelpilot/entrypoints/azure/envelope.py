"""Event Grid delivery envelopes, in both schemas, reduced to one shape.

Event Grid delivers an event either in the Event Grid schema (``eventType``,
``eventTime``, ``topic``, ``dataVersion``) or in the CloudEvents 1.0 schema
(``type``, ``time``, ``source``, ``specversion``, extension attributes such as
``traceparent``). Both become an :class:`Envelope`. A manual run (portal *Code +
Test* or ``POST /admin/functions/<name>`` with ``{"input": "<event JSON>"}``)
delivers the same JSON, possibly still as a string, or as the one-element array
a webhook receives; :func:`parse_envelope` accepts all of these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelpilot.exceptions import InvalidEvent

__all__ = ["Envelope", "parse_envelope", "validation_message"]


class _EventGridSchema(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(min_length=1)
    topic: str | None = None
    subject: str = ""
    event_type: str = Field(alias="eventType", min_length=1)
    event_time: str | None = Field(default=None, alias="eventTime")
    data: Any = None
    data_version: str | None = Field(default=None, alias="dataVersion")


class _CloudEventSchema(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    specversion: str
    subject: str = ""
    time: str | None = None
    data: Any = None
    traceparent: str | None = None


@dataclass(frozen=True)
class Envelope:
    """One delivered event, whatever its schema."""

    id: str
    type: str
    source: str
    subject: str
    time: str | None
    data: dict[str, Any]
    schema: str
    traceparent: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)


def validation_message(exc: ValidationError) -> str:
    """Return the first pydantic error as ``field: problem``."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    return f"{where}: {first['msg']}"


def _unwrap(raw: Any) -> dict[str, Any]:
    # a console test run wraps the event (or its JSON text) in {"input": ...}; deeper wrapping is not an event
    for _ in range(4):
        if isinstance(raw, bytes | bytearray):
            raw = raw.decode("utf-8", errors="replace")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidEvent(f"event is not JSON: {exc.msg} at position {exc.pos}") from None
            except RecursionError:
                raise InvalidEvent("event is nested too deeply to be an event") from None
        if not (isinstance(raw, dict) and set(raw) == {"input"}):
            break
        raw = raw["input"]
    if isinstance(raw, list):
        if len(raw) != 1:
            raise InvalidEvent(f"expected one event, got an array of {len(raw)}; send events one at a time")
        raw = raw[0]
    if not isinstance(raw, dict):
        raise InvalidEvent(f"an event must be a JSON object, not {type(raw).__name__}")
    return raw


def parse_envelope(raw: Any) -> Envelope:
    """Validate an Event Grid or CloudEvents payload and return its :class:`Envelope`."""
    body = _unwrap(raw)
    try:
        if "specversion" in body:
            ce = _CloudEventSchema.model_validate(body)
            extras = dict(ce.model_extra or {})
            data = ce.data
            envelope = Envelope(
                ce.id,
                ce.type,
                ce.source,
                ce.subject,
                ce.time,
                data if isinstance(data, dict) else {},
                "cloudevents",
                ce.traceparent,
                extras,
            )
        else:
            eg = _EventGridSchema.model_validate(body)
            data = eg.data
            envelope = Envelope(
                eg.id,
                eg.event_type,
                eg.topic or "",
                eg.subject,
                eg.event_time,
                data if isinstance(data, dict) else {},
                "eventgrid",
            )
    except ValidationError as exc:
        raise InvalidEvent(f"not an Event Grid event or CloudEvent: {validation_message(exc)}") from None
    if not isinstance(body.get("data"), dict):
        raise InvalidEvent(f"event {envelope.id} ({envelope.type}) has no data object", event_id=envelope.id)
    return envelope
