"""What the blueprints share: trigger objects → plain payloads, the bus, JSON replies."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import azure.functions as func

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.azure.envelope import parse_envelope
from modelpilot.service.dispatch import Delivery, dispatch

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelpilot.entrypoints.azure.envelope import Envelope
    from modelpilot.entrypoints.azure.events import Translation

__all__ = ["event_payload", "json_response", "run_event", "run_translation"]


def event_payload(event: Any) -> dict[str, Any]:
    """Return the wire JSON of a ``func.EventGridEvent`` or ``func.CloudEvent``."""
    if isinstance(event, func.CloudEvent):
        when = event.time.isoformat() if event.time else None
        return {
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "specversion": event.specversion,
            "subject": event.subject or "",
            "time": when,
            "data": event.get_json(),
            **(event.extension_attrs or {}),
        }
    when = event.event_time.isoformat() if event.event_time else None
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject or "",
        "eventType": event.event_type,
        "eventTime": when,
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


def run_translation(
    function: str, source: str, translate: Callable[[], Translation | None], traceparent: str | None = None
) -> dict[str, Any]:
    """Handle the command ``translate`` returns once per business key (``modelpilot.service.dispatch``)."""

    def delivery() -> Delivery | None:
        done = translate()
        return None if done is None else Delivery(source, done.command, done.key, traceparent=traceparent)

    return dispatch(get_bus(), delivery, function=function, source=source)


def run_event(event: Any, function: str, translate: Callable[[Envelope], Translation | None]) -> dict[str, Any]:
    """Parse an Event Grid delivery (either schema) and dispatch its command once."""
    payload = event_payload(event)
    source = f"{payload.get('type') or payload.get('eventType')} {payload.get('id')}"
    traceparent = payload.get("traceparent")
    return run_translation(
        function,
        source,
        lambda: translate(parse_envelope(payload)),
        traceparent if isinstance(traceparent, str) else None,
    )


def json_response(data: Any, status: int = 200) -> func.HttpResponse:
    """Return ``data`` as a JSON HTTP response."""
    return func.HttpResponse(
        json.dumps(data, default=str, sort_keys=True), status_code=status, mimetype="application/json"
    )
