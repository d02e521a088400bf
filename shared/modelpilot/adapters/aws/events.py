"""Outbound messages on AWS: domain events on a custom EventBridge bus, notifications on SNS."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot import telemetry
from modelpilot.adapters._limits import fit_message
from modelpilot.adapters.aws._errors import translate
from modelpilot.exceptions import InvalidInput, TransientError
from modelpilot.ports import EventPublisher, Notifier

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from modelpilot.domain.events import Event

__all__ = ["SOURCE", "EventBridgePublisher", "SnsNotifier"]

#: the ``source`` of every event ModelPilot puts on the bus (rules match on it)
SOURCE = "modelpilot"
#: PutEvents accepts at most 10 entries per call
BATCH = 10
#: ... whose sizes (EventBridge's entry-size formula, :func:`entry_size`) add up to less than 256 KiB
MAX_CALL_BYTES = 256 * 1024
#: SNS messages, subject and attributes included, are at most 256 KiB
MAX_SNS_BYTES = 256 * 1024
log = telemetry.get_logger("modelpilot.aws.events")


class EventBridgePublisher(EventPublisher):
    """Puts domain events on a custom EventBridge bus.

    ``detail-type`` is the event name, ``detail`` its JSON with the W3C
    ``traceparent`` added (and the same context as the entry's X-Ray ``TraceHeader``),
    so the next function continues the same trace.
    Entries go in order, in PutEvents calls of at most ten entries under 256 KiB;
    an event that alone reaches 256 KiB raises ``InvalidInput`` before anything of
    the batch is sent. Entries EventBridge reports as failed are retried once,
    then ``TransientError`` is raised (the platform retries).

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
        entry = {
            "Source": self.source,
            "DetailType": event.name,
            "EventBusName": self.bus_name,
            "Detail": json.dumps(detail, sort_keys=True, default=str),
        }
        header = telemetry.xray_header(traceparent)
        if header:  # EventBridge passes it on to X-Ray-traced targets
            entry["TraceHeader"] = header
        return entry

    def publish(self, events: Sequence[Event], *, traceparent: str | None = None) -> None:
        entries = [self.entry(e, traceparent) for e in events]
        for entry in entries:
            if entry_size(entry) >= MAX_CALL_BYTES:
                raise InvalidInput(
                    f"event {entry['DetailType']} is {entry_size(entry)} bytes; EventBridge takes less than "
                    f"{MAX_CALL_BYTES} per event, so nothing of this batch was published",
                    bus=self.bus_name,
                )
        for batch in _batches(entries):
            self._put(batch)

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

    The subject is made valid for SNS (printable ASCII, at most 100 characters),
    attributes with empty values are left out (SNS refuses them) and a message
    that would exceed SNS's 256 KiB is cut to fit, with a note.

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
        subject = _subject(subject)
        # SNS refuses a message that, with its subject and attributes, exceeds 256 KiB: cut it, keep the notification
        overhead = len(subject) + sum(len(k.encode()) + len(v["StringValue"].encode()) + 16 for k, v in attrs.items())
        message = fit_message(message, MAX_SNS_BYTES - overhead)
        try:
            self.client.publish(TopicArn=self.topic_arn, Subject=subject, Message=message, MessageAttributes=attrs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"SNS Publish to {self.topic_arn}") from exc


def entry_size(entry: dict[str, Any]) -> int:
    """Return a PutEvents entry's size as EventBridge counts it (UTF-8 bytes of its fields)."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key) or "").encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [])


def _batches(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split entries, in order, into PutEvents calls of at most ``BATCH`` entries under ``MAX_CALL_BYTES``."""
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        n = entry_size(entry)
        if batch and (len(batch) == BATCH or size + n >= MAX_CALL_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += n
    if batch:
        yield batch


def _subject(text: str) -> str:
    """SNS subjects: at most 100 printable ASCII characters, no line breaks."""
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return clean[:100] or "modelpilot"
