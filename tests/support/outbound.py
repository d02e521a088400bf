"""Every EventPublisher and Notifier, each with a way to read back what it delivered, for the contract suites.

* ``fake``: the recording fakes of ``modelpilot.testing``;
* ``jsonl``: the local backend's JSON-lines log and notifier;
* ``eventbridge`` / ``sns``: the AWS adapters on moto's server over HTTP. What was
  published is read back as a consumer sees it: an EventBridge rule on
  ``source: modelpilot`` targets an SQS queue, and an SQS queue subscribes to the
  SNS topic. moto checks PutEvents' ten-entry limit but not its 256 KiB one, so a
  ``before-send`` hook on the client answers an oversized request as EventBridge
  does (``ValidationException``); the hook also counts the requests sent and,
  for the throttling case (moto never throttles), answers every request with the
  service's throttling error, which botocore parses as it would AWS's.
* ``eventgrid``: the Azure adapters with the real ``azure-eventgrid`` client,
  pointed at a local topic endpoint (``tests/support/eventgrid.py``) that checks
  what the service checks; events are read back with the Azure entrypoints' own
  envelope parser.

Each backend also builds the failures its contract covers: ``unreachable``
(nothing listens where the backend should be), ``throttled`` (the backend answers
"slow down"), and refusals for good: ``unknown`` (no such bus or topic) and
``forbidden`` (a wrong key).
"""

from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config

from modelpilot.adapters.local.events import JsonlEventLog, JsonlNotifier
from modelpilot.testing import RecordingNotifier, RecordingPublisher

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import pytest

    from modelpilot.ports import EventPublisher, Notifier

PUBLISHERS = ["fake", "jsonl", "eventbridge", "eventgrid"]
NOTIFIERS = ["fake", "jsonl", "sns", "eventgrid"]
#: the EventBridge request-size limit moto does not check (the sum of entry sizes must stay under it)
PUT_EVENTS_BYTES = 256 * 1024


@dataclass(frozen=True)
class Published:
    """One event as its consumer reads it back."""

    name: str
    detail: dict[str, Any]
    traceparent: str | None


@dataclass(frozen=True)
class Notification:
    """One notification as its reader sees it."""

    subject: str
    message: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Limits:
    """A backend's per-request limits (None: none)."""

    events_per_request: int | None = None
    bytes_per_request: int | None = None
    message_bytes: int | None = None


@dataclass
class PublisherCase:
    """A publisher, what reached its consumer, and the requests its backend saw (None: no wire)."""

    publisher: EventPublisher
    published: Callable[[], list[Published]]
    requests: Callable[[], list[tuple[bool, int]]] | None = None
    limits: Limits = field(default_factory=Limits)


@dataclass
class NotifierCase:
    """A notifier and what reached its readers."""

    notifier: Notifier
    notified: Callable[[], list[Notification]]
    limits: Limits = field(default_factory=Limits)


def closed_port() -> int:
    """Return a port on 127.0.0.1 nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- fakes and the local backend -----------------------------------------------------------
def fake_publisher() -> PublisherCase:
    fake = RecordingPublisher()

    def published() -> list[Published]:
        return [Published(e.name, e.to_dict(), tp) for e, tp in zip(fake.events, fake.traceparents, strict=True)]

    return PublisherCase(fake, published)


def fake_notifier() -> NotifierCase:
    fake = RecordingNotifier()

    def notified() -> list[Notification]:
        return [Notification(s, m, a) for (s, m), a in zip(fake.sent, fake.attributes, strict=True)]

    return NotifierCase(fake, notified)


def jsonl_publisher(tmp_path: Path) -> PublisherCase:
    log = JsonlEventLog(tmp_path / "home" / "events.jsonl")

    def published() -> list[Published]:
        return [Published(e["type"], e["detail"], e["traceparent"]) for e in log.read()]

    return PublisherCase(log, published)


def jsonl_notifier(tmp_path: Path) -> NotifierCase:
    path = tmp_path / "home" / "notifications.jsonl"

    def notified() -> list[Notification]:
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return [Notification(n["subject"], n["message"], n["attributes"]) for n in lines]

    return NotifierCase(JsonlNotifier(path), notified)


def _unwritable(tmp_path: Path, name: str) -> Path:
    """A log path below a regular file: no folder can be made there."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    return blocker / name


# -- AWS on moto -------------------------------------------------------------------------
class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def _error(status: int, body: str, content_type: str) -> AWSResponse:
    headers = {"Content-Type": content_type, "x-amzn-RequestId": str(uuid.uuid4())}
    return AWSResponse("http://127.0.0.1/", status, headers, _Body(body.encode()))


class Wire:
    """A ``before-send`` hook on one client: counts requests; refuses what the real service refuses."""

    def __init__(self, client: Any, operation: str, *, throttle: bool = False) -> None:
        self.requests: list[tuple[bool, int]] = []
        self.throttle = throttle
        self.operation = operation
        client.meta.events.register(f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}", self)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.throttle:
            self.requests.append((False, 0))
            if self.operation == "PutEvents":
                return _error(
                    400, '{"__type": "ThrottlingException", "message": "Rate exceeded"}', "application/x-amz-json-1.1"
                )
            return _error(
                400,
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
                "</Error><RequestId>x</RequestId></ErrorResponse>",
                "text/xml",
            )
        if self.operation != "PutEvents":
            self.requests.append((True, 1))
            return None
        entries = json.loads(request.body)["Entries"]
        size = sum(
            len(e.get("Source", "").encode())
            + len(e.get("DetailType", "").encode())
            + len(e.get("Detail", "").encode())
            for e in entries
        )
        if size >= PUT_EVENTS_BYTES:
            self.requests.append((False, len(entries)))
            return _error(
                400,
                json.dumps(
                    {
                        "__type": "ValidationException",
                        "message": f"Total size of the entries ({size}) is over the limit.",
                    }
                ),
                "application/x-amz-json-1.1",
            )
        self.requests.append((True, len(entries)))
        return None


def _aws_client(service: str, endpoint: str, *, retries: int | None = None) -> Any:
    from tests.support.aws import CREDENTIALS, REGION

    config = Config(retries={"total_max_attempts": retries, "mode": "standard"}, connect_timeout=2) if retries else None
    return boto3.session.Session(region_name=REGION, **CREDENTIALS).client(
        service, endpoint_url=endpoint, config=config
    )


def _queue(endpoint: str) -> tuple[str, str]:
    from tests.support.aws import client, unique

    sqs = client("sqs", endpoint)
    url = sqs.create_queue(QueueName=unique("read-back"))["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _drainer(endpoint: str, url: str) -> Callable[[], list[dict[str, Any]]]:
    """Return a function giving every message the queue received so far, in arrival order."""
    from tests.support.aws import client

    sqs, seen = client("sqs", endpoint), []

    def drain() -> list[dict[str, Any]]:
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            seen.extend(json.loads(m["Body"]) for m in batch)
        return list(seen)

    return drain


def eventbridge_publisher(request: pytest.FixtureRequest, *, throttle: bool = False) -> PublisherCase:
    from modelpilot.adapters.aws.events import EventBridgePublisher
    from tests.support.aws import client, moto_endpoint, unique

    endpoint = moto_endpoint(request)
    events = client("events", endpoint)
    bus = unique("bus")
    events.create_event_bus(Name=bus)
    url, arn = _queue(endpoint)
    events.put_rule(Name="read-back", EventBusName=bus, EventPattern='{"source": ["modelpilot"]}')
    events.put_targets(Rule="read-back", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    own = _aws_client("events", endpoint, retries=1 if throttle else None)
    wire = Wire(own, "PutEvents", throttle=throttle)
    drain = _drainer(endpoint, url)

    def published() -> list[Published]:
        found = []
        for message in drain():
            detail = dict(message["detail"])
            found.append(Published(message["detail-type"], detail, detail.pop("traceparent", None)))
        return found

    limits = Limits(events_per_request=10, bytes_per_request=PUT_EVENTS_BYTES)
    return PublisherCase(EventBridgePublisher(bus, own), published, lambda: list(wire.requests), limits)


def sns_notifier(request: pytest.FixtureRequest, *, throttle: bool = False) -> NotifierCase:
    from modelpilot.adapters.aws.events import SnsNotifier
    from tests.support.aws import client, moto_endpoint, unique

    endpoint = moto_endpoint(request)
    topic = client("sns", endpoint).create_topic(Name=unique("notifications"))["TopicArn"]
    url, arn = _queue(endpoint)
    client("sns", endpoint).subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    own = _aws_client("sns", endpoint, retries=1 if throttle else None)
    Wire(own, "Publish", throttle=throttle)
    drain = _drainer(endpoint, url)

    def notified() -> list[Notification]:
        return [
            Notification(
                m.get("Subject") or "",
                m["Message"],
                {k: v["Value"] for k, v in (m.get("MessageAttributes") or {}).items()},
            )
            for m in drain()
        ]

    return NotifierCase(SnsNotifier(topic, own), notified, Limits(message_bytes=256 * 1024))


# -- Azure: the SDK client against a local topic endpoint ------------------------------------
def _topic(request: pytest.FixtureRequest) -> Any:
    from tests.support.eventgrid import EventGridTopic

    topic = EventGridTopic()
    request.addfinalizer(topic.stop)
    return topic


def _eventgrid_client(endpoint: str, key: str, **kwargs: Any) -> Any:
    from azure.core.credentials import AzureKeyCredential
    from azure.eventgrid import EventGridPublisherClient

    return EventGridPublisherClient(endpoint, AzureKeyCredential(key), **kwargs)


def _envelopes(topic: Any, notifications: bool) -> list[Any]:
    from modelpilot.entrypoints.azure.envelope import parse_envelope

    envelopes = [parse_envelope(event) for event in list(topic.events)]
    return [e for e in envelopes if (e.type == "ModelPilot.Notification") is notifications]


def eventgrid_publisher(request: pytest.FixtureRequest) -> PublisherCase:
    from modelpilot.adapters.azure.eventgrid import TYPE_PREFIX, EventGridPublisher
    from tests.support import eventgrid

    topic = _topic(request)

    def published() -> list[Published]:
        return [Published(e.type.removeprefix(TYPE_PREFIX), e.data, e.traceparent) for e in _envelopes(topic, False)]

    def requests() -> list[tuple[bool, int]]:
        return [(status == 200, count) for status, count, _ in topic.requests]

    limits = Limits(events_per_request=eventgrid.MAX_EVENTS_PER_REQUEST, bytes_per_request=eventgrid.MAX_REQUEST_BYTES)
    return PublisherCase(EventGridPublisher(_eventgrid_client(topic.endpoint, topic.key)), published, requests, limits)


def eventgrid_notifier(request: pytest.FixtureRequest) -> NotifierCase:
    from modelpilot.adapters.azure.eventgrid import EventGridNotifier
    from tests.support import eventgrid

    topic = _topic(request)

    def notified() -> list[Notification]:
        return [
            Notification(e.data["subject"], e.data["message"], e.data["attributes"]) for e in _envelopes(topic, True)
        ]

    client = _eventgrid_client(topic.endpoint, topic.key)
    return NotifierCase(EventGridNotifier(client), notified, Limits(message_bytes=eventgrid.MAX_EVENT_BYTES))


# -- choosing ----------------------------------------------------------------------------
def publisher_case(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> PublisherCase:
    if kind == "fake":
        return fake_publisher()
    if kind == "jsonl":
        return jsonl_publisher(tmp_path)
    if kind == "eventbridge":
        return eventbridge_publisher(request)
    return eventgrid_publisher(request)


def notifier_case(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> NotifierCase:
    if kind == "fake":
        return fake_notifier()
    if kind == "jsonl":
        return jsonl_notifier(tmp_path)
    if kind == "sns":
        return sns_notifier(request)
    return eventgrid_notifier(request)


def failing(kind: str, failure: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Return a publisher or notifier of ``kind`` whose backend shows ``failure``."""
    from modelpilot.adapters.aws.events import EventBridgePublisher, SnsNotifier
    from modelpilot.adapters.azure.eventgrid import EventGridNotifier, EventGridPublisher
    from tests.support.aws import ACCOUNT, REGION, client, moto_endpoint

    nowhere = f"http://127.0.0.1:{closed_port()}"
    if kind in {"jsonl-publisher", "jsonl-notifier"}:
        assert failure == "unreachable", failure
        if kind == "jsonl-publisher":
            return JsonlEventLog(_unwritable(tmp_path, "events.jsonl"))
        return JsonlNotifier(_unwritable(tmp_path, "notifications.jsonl"))
    if kind in {"eventbridge", "sns"}:
        assert failure in {"unreachable", "throttled", "unknown"}, failure
        if failure == "throttled":
            if kind == "eventbridge":
                return eventbridge_publisher(request, throttle=True).publisher
            return sns_notifier(request, throttle=True).notifier
        service = "events" if kind == "eventbridge" else "sns"
        own = (
            _aws_client(service, nowhere, retries=1)
            if failure == "unreachable"
            else client(service, moto_endpoint(request))
        )
        if kind == "eventbridge":
            return EventBridgePublisher("no-such-bus", own)
        return SnsNotifier(f"arn:aws:sns:{REGION}:{ACCOUNT}:no-such-topic", own)
    assert kind in {"eventgrid-publisher", "eventgrid-notifier"}, kind
    make = EventGridPublisher if kind == "eventgrid-publisher" else EventGridNotifier
    if failure == "unreachable":
        return make(_eventgrid_client(f"{nowhere}/api/events", "topic-key", retry_total=0))
    topic = _topic(request)
    key = "a-wrong-key" if failure == "forbidden" else topic.key
    topic.fail_with = {"throttled": 503, "unknown": 404, "forbidden": None}[failure]
    return make(_eventgrid_client(topic.endpoint, key, retry_total=0))
