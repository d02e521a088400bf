"""Outbound messages on AWS: domain events on a custom EventBridge bus, notifications on SNS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot import telemetry
from modelpilot.adapters.aws._errors import translate
from modelpilot.exceptions import TransientError
from modelpilot.ports import EventPublisher, Notifier

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelpilot.domain.events import Event

__all__ = ["SOURCE", "EventBridgePublisher", "SnsNotifier"]

#: the ``source`` of every event ModelPilot puts on the bus (rules match on it)
SOURCE = "modelpilot"
#: PutEvents accepts at most 10 entries per call
BATCH = 10
log = telemetry.get_logger("modelpilot.aws.events")


class EventBridgePublisher(EventPublisher):
    """Puts domain events on a custom EventBridge bus.

    ``detail-type`` is the event name, ``detail`` its JSON with the W3C
    ``traceparent`` added, so the next function continues the same trace.
    Entries go in batches of ten; entries EventBridge reports as failed are
    retried once, then ``TransientError`` is raised (the platform retries).

    Parameters
    ----------
    bus_name:
        The bus name or ARN (``!Ref EventBus``).
    client:
        A boto3 EventBridge client (injected).
    """

    def __init__(self, bus_name: str, client: Any, *, source: str = SOURCE) -> None:
        self.bus_name = bus_name
        self.client = client
        self.source = source

    def entry(self, event: Event, traceparent: str | None) -> dict[str, Any]:
        """Return the PutEvents entry of one domain event."""
        detail = event.to_dict()
        if traceparent:
            detail["traceparent"] = traceparent
        return {
            "Source": self.source,
            "DetailType": event.name,
            "EventBusName": self.bus_name,
            "Detail": json.dumps(detail, sort_keys=True, default=str),
        }

    def publish(self, events: Sequence[Event], *, traceparent: str | None = None) -> None:
        entries = [self.entry(e, traceparent) for e in events]
        for start in range(0, len(entries), BATCH):
            self._put(entries[start : start + BATCH])

    def _put(self, batch: list[dict[str, Any]], *, retry: bool = True) -> None:
        try:
            response = self.client.put_events(Entries=batch)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"EventBridge PutEvents on {self.bus_name}") from exc
        if not response.get("FailedEntryCount"):
            return
        failed = [(e, r) for e, r in zip(batch, response.get("Entries", []), strict=False) if r.get("ErrorCode")]
        if retry and failed:
            self._put([e for e, _ in failed], retry=False)
            return
        codes = sorted({str(r.get("ErrorCode")) for _, r in failed})
        raise TransientError(
            f"EventBridge refused {response['FailedEntryCount']} event(s) on {self.bus_name}: {', '.join(codes)}",
            bus=self.bus_name,
        )


class SnsNotifier(Notifier):
    """Sends human-facing notifications to an SNS topic (e-mail, chat subscriptions).

    Parameters
    ----------
    topic_arn:
        The topic (``!Ref NotificationTopic``).
    client:
        A boto3 SNS client (injected).
    """

    def __init__(self, topic_arn: str, client: Any) -> None:
        self.topic_arn = topic_arn
        self.client = client

    def notify(self, subject: str, message: str, *, attributes: dict[str, str] | None = None) -> None:
        attrs = {k: {"DataType": "String", "StringValue": v} for k, v in (attributes or {}).items() if v}
        try:
            self.client.publish(
                TopicArn=self.topic_arn, Subject=_subject(subject), Message=message, MessageAttributes=attrs
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"SNS Publish to {self.topic_arn}") from exc


def _subject(text: str) -> str:
    """SNS subjects: at most 100 printable ASCII characters, no line breaks."""
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return clean[:100] or "modelpilot"
