"""Event Grid publisher and notifier: outbound domain events as CloudEvents 1.0.

Every domain event becomes one CloudEvent with ``type`` ``ModelPilot.<EventName>``,
``subject`` ``models/<model>[/environments/<env>]`` and the event's JSON as
``data``; the W3C ``traceparent`` rides along as a CloudEvents extension
attribute (the distributed-tracing extension), so the next function continues
the trace. Notifications are CloudEvents of type ``ModelPilot.Notification`` on
the same topic, for an alerting subscription (Logic App, action group) to pick up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azure.core.messaging import CloudEvent

from modelpilot.adapters.azure._errors import azure_errors
from modelpilot.ports import EventPublisher, Notifier

if TYPE_CHECKING:
    from collections.abc import Sequence

    from azure.eventgrid import EventGridPublisherClient

    from modelpilot.domain.events import Event

__all__ = ["SOURCE", "EventGridNotifier", "EventGridPublisher", "to_cloud_event"]

SOURCE = "/modelpilot"
TYPE_PREFIX = "ModelPilot."


def _subject(detail: dict[str, Any]) -> str:
    subject = f"models/{detail.get('model', '-')}"
    if detail.get("environment"):
        subject += f"/environments/{detail['environment']}"
    return subject


def to_cloud_event(event: Event, *, source: str = SOURCE, traceparent: str | None = None) -> CloudEvent[Any]:
    """Return the CloudEvent that carries ``event``."""
    detail = event.to_dict()
    extensions = {"traceparent": traceparent} if traceparent else None
    return CloudEvent(
        source=source,
        type=TYPE_PREFIX + event.name,
        data=detail,
        subject=_subject(detail),
        datacontenttype="application/json",
        extensions=extensions,
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
        batch = [to_cloud_event(e, source=self.source, traceparent=traceparent) for e in events]
        with azure_errors("publish to Event Grid"):
            self.client.send(batch)


class EventGridNotifier(Notifier):
    """Sends notifications as ``ModelPilot.Notification`` CloudEvents to the same topic."""

    def __init__(self, client: EventGridPublisherClient, *, source: str = SOURCE) -> None:
        self.client = client
        self.source = source

    def notify(self, subject: str, message: str, *, attributes: dict[str, str] | None = None) -> None:
        event = CloudEvent(
            source=self.source,
            type=TYPE_PREFIX + "Notification",
            subject="notifications",
            data={"subject": subject, "message": message, "attributes": attributes or {}},
            datacontenttype="application/json",
        )
        with azure_errors("notify through Event Grid"):
            self.client.send([event])
