"""The outbox on AWS (moto): PutEvents failing after the registry committed loses no event.

EventBridge is made to refuse every PutEvents (HTTP 500, after botocore's own retries) during the
first delivery of an upload; the registration and the promotion to dev commit in DynamoDB, the
publish fails and the function raises so Lambda retries. Before the outbox the retry was a no-op on
the manifest digest and both events were lost; now the retry (or the next command, or the SLO/drift
timer, or ``modelpilot outbox relay``) publishes ModelRegistered and ModelPromoted exactly once,
each with ``detail.id`` = ``<model>#<seq>``.

What this cannot show: EventBridge's own at-least-once delivery to rules (a consumer still has to drop
a repeated ``detail.id``), or a real Lambda retry schedule.
"""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.awsrequest import AWSResponse

from modelpilot.bootstrap import get_bus
from modelpilot.exceptions import TransientError
from modelpilot.service import outbox
from tests.support.aws import put_policy, stack_environment, upload_package
from tests.support.aws_events import LambdaContext, handler, handler_stack, s3_notification

upload = handler("model_upload")


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: object) -> object:
        yield self.data


class EventBridgeDown:
    """A ``before-send`` hook on the publisher's client: every PutEvents answers 500 while ``down``."""

    def __init__(self, client: object) -> None:
        self.down = True
        self.refused = 0
        client.meta.events.register("before-send.eventbridge.PutEvents", self)  # type: ignore[attr-defined]

    def __call__(self, request: object, **_: object) -> AWSResponse | None:
        if not self.down:
            return None
        self.refused += 1
        headers = {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())}
        body = b'{"__type": "InternalException", "message": "Internal error"}'
        return AWSResponse("http://127.0.0.1/", 500, headers, _Body(body))


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def bus_events(stack):
    sqs = stack.client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        found += [json.loads(m["Body"]) for m in batch]


def _refresh(stack, monkeypatch):
    for name, value in stack_environment(stack).items():
        monkeypatch.setenv(name, value)


def test_putevents_failing_during_an_upload_loses_neither_event_and_the_retry_sends_each_once(
    aws_stack, make_package, monkeypatch
):
    put_policy(aws_stack)
    key = upload_package(aws_stack, make_package("churn"), "models/churn/v1")
    event = s3_notification(aws_stack.bucket, key)
    bus = get_bus()  # the bus the function uses (built once per process): break its EventBridge
    wire = EventBridgeDown(bus.services.publisher.client)
    with pytest.raises(TransientError):
        upload(event, LambdaContext())
    assert wire.refused >= 1
    registry = bus.services.registry
    assert registry.get_alias("churn", "dev").version == 1  # committed
    assert bus_events(aws_stack) == []  # and not published
    wire.down = False
    _refresh(aws_stack, monkeypatch)
    reply = upload(event, LambdaContext())  # Lambda's retry of the same event
    assert reply["results"][0]["status"] == "unchanged"
    published = bus_events(aws_stack)
    assert [(e["detail-type"], e["detail"]["id"]) for e in published] == [
        ("ModelRegistered", "churn#1"),
        ("ModelPromoted", "churn#2"),
    ]
    assert published[1]["detail"]["environment"] == "dev" and published[1]["detail"]["version"] == 1
    assert registry.outbox_watermark("churn") == 2
    # nothing is sent twice: another delivery, and two relays, publish nothing more
    upload(event, LambdaContext())
    assert outbox.relay(bus.services) == {"churn": 0}
    assert outbox.relay(bus.services) == {"churn": 0}
    assert bus_events(aws_stack) == []


def test_a_timer_relay_sends_what_a_failed_publish_left(aws_stack, make_package, monkeypatch):
    key = upload_package(aws_stack, make_package("fraud"), "models/fraud/v1")
    bus = get_bus()
    wire = EventBridgeDown(bus.services.publisher.client)
    with pytest.raises(TransientError):
        upload(s3_notification(aws_stack.bucket, key), LambdaContext())
    wire.down = False
    assert outbox.relay(bus.services) == {"fraud": 2}  # what the drift / SLO timers and `outbox relay` run
    assert [e["detail"]["id"] for e in bus_events(aws_stack)] == ["fraud#1", "fraud#2"]
