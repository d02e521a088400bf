"""Event Grid publisher and notifier: outbound domain events as CloudEvents 1.0.

Every domain event becomes one CloudEvent with ``type`` ``ModelPilot.<EventName>``,
``subject`` ``models/<model>[/environments/<env>]`` and the event's JSON as
``data``; the W3C ``traceparent`` rides along as a CloudEvents extension
attribute (the distributed-tracing extension), so the next function continues
the trace. Notifications are CloudEvents of type ``ModelPilot.Notification`` on
the same topic, for an alerting subscription (Logic App, action group) to pick up.

A topic takes at most 5,000 events and 1 MB per request, and 1 MB per event: a
batch is sent in order in as many requests as it needs; an event too large on its
own raises ``InvalidInput`` before anything of the batch is sent, and a
notification's message is cut to fit. Throttling, outages and unreachable topics
raise ``TransientError``; a refused key ``NotAuthorized``; any other refusal a
permanent ``ModelPilotError``.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.core.messaging import CloudEvent

from modelpilot.adapters._limits import fit_message
from modelpilot.adapters.azure._errors import azure_errors
from modelpilot.exceptions import InvalidInput, ModelPilotError, NotFound
from modelpilot.ports import EventPublisher, Notifier

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from azure.eventgrid import EventGridPublisherClient

    from modelpilot.domain.events import Event

__all__ = ["SOURCE", "EventGridNotifier", "EventGridPublisher", "to_cloud_event"]

SOURCE = "/modelpilot"
TYPE_PREFIX = "ModelPilot."
#: a topic takes at most this many events per request
MAX_EVENTS = 5000
#: ... and 1 MB per request and per event; sizes here are estimated, so keep a margin below 1 MiB
MAX_REQUEST_BYTES = 1_000_000
#: what the CloudEvents envelope (id, time, specversion, content type, separators) adds to an event at most
ENVELOPE_BYTES = 512


def _subject(detail: dict[str, Any]) -> str:
    subject = f"models/{detail.get('model', '-')}"
    if detail.get("environment"):
        subject += f"/environments/{detail['environment']}"
    return subject


def to_cloud_event(event: Event, *, source: str = SOURCE, traceparent: str | None = None) -> CloudEvent[Any]:
    """Return the CloudEvent that carries ``event``."""
    detail = event.to_dict()
    extensions = {"traceparent": traceparent} if traceparent else None
    # an outbox event keeps its id (``<model>#<seq>``) as the CloudEvents id, so a re-publication is a duplicate
    # a subscriber can drop; other events get a fresh one (CloudEvent draws a uuid4 for None)
    return CloudEvent(
        source=source,
        type=TYPE_PREFIX + event.name,
        data=detail,
        subject=_subject(detail),
        datacontenttype="application/json",
        extensions=extensions,
        id=event.event_id,
    )


class EventGridPublisher(EventPublisher):
    """Publishes domain events to an Event Grid topic (CloudEvents schema).

    Parameters
    ----------
    client:
        An ``EventGridPublisherClient`` for the topic endpoint, built with
        ``DefaultAzureCredential`` (role *EventGrid Data Sender*).
    source:
        The CloudEvents ``source`` (the function app's identity, e.g. its resource id).
    """

    def __init__(self, client: EventGridPublisherClient, *, source: str = SOURCE) -> None:
        self.client = client
        self.source = source

    def publish(self, events: Sequence[Event], *, traceparent: str | None = None) -> None:
        if not events:
            return
        cloud_events = [to_cloud_event(e, source=self.source, traceparent=traceparent) for e in events]
        sized = [(e, event_size(e)) for e in cloud_events]
        for event, size in sized:
            if size > MAX_REQUEST_BYTES:
                raise InvalidInput(
                    f"event {event.type} is about {size} bytes; an Event Grid event must stay under 1 MB, "
                    "so nothing of this batch was published"
                )
        for batch in _batches(sized):
            with _sending("publish to Event Grid"):
                self.client.send(batch)


class EventGridNotifier(Notifier):
    """Sends notifications as ``ModelPilot.Notification`` CloudEvents to the same topic."""

    def __init__(self, client: EventGridPublisherClient, *, source: str = SOURCE) -> None:
        self.client = client
        self.source = source

    def notify(self, subject: str, message: str, *, attributes: dict[str, str] | None = None) -> None:
        data: dict[str, Any] = {"subject": subject, "message": "", "attributes": attributes or {}}
        room = MAX_REQUEST_BYTES - ENVELOPE_BYTES - len(json.dumps(data)) - len(self.source)
        data["message"] = fit_message(message, room, _json_size)
        event = CloudEvent(
            source=self.source,
            type=TYPE_PREFIX + "Notification",
            subject="notifications",
            data=data,
            datacontenttype="application/json",
        )
        with _sending("notify through Event Grid"):
            self.client.send([event])


def _json_size(text: str) -> int:
    return len(json.dumps(text))


def event_size(event: CloudEvent[Any]) -> int:
    """Return an upper estimate of the bytes ``event`` takes in a request (its JSON as the SDK sends it)."""
    body = {"source": event.source, "type": event.type, "subject": event.subject, "data": event.data}
    return len(json.dumps({**body, **(event.extensions or {})}, default=str)) + ENVELOPE_BYTES


def _batches(sized: list[tuple[CloudEvent[Any], int]]) -> Iterator[list[CloudEvent[Any]]]:
    """Split events, in order, into requests of at most ``MAX_EVENTS`` events and ``MAX_REQUEST_BYTES``."""
    batch: list[CloudEvent[Any]] = []
    total = 0
    for event, size in sized:
        if batch and (len(batch) == MAX_EVENTS or total + size > MAX_REQUEST_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(event)
        total += size
    if batch:
        yield batch


@contextmanager
def _sending(what: str) -> Iterator[None]:
    """Typed errors for a request to the topic: what :func:`azure_errors` lets through is a permanent refusal."""
    try:
        with azure_errors(what):
            yield
    except ResourceNotFoundError as exc:  # the SDK re-raises a 404 without its status
        raise NotFound(f"{what}: the topic does not exist (404)", status=404) from exc
    except HttpResponseError as exc:
        raise ModelPilotError(
            f"{what}: Event Grid refused the request ({exc.status_code} {exc.reason})", status=exc.status_code
        ) from exc
    except AzureError as exc:
        raise ModelPilotError(f"{what} failed: {type(exc).__name__}: {exc.message}") from exc
