"""The quality functions on AWS (moto): the hourly timer, console payloads, and label files landing in S3."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelpilot import bootstrap
from modelpilot.entrypoints.aws.quality import feedback_deliveries, quality_delivery
from modelpilot.exceptions import InvalidEvent
from modelpilot.service.messagebus import COMMAND_HANDLERS, MessageBus, Outcome
from tests.support.aws_events import (
    LambdaContext,
    first_reply_again,
    handler,
    object_created,
    s3_notification,
    scheduler_input,
)

quality_batch, quality_feedback = handler("quality_batch"), handler("quality_feedback")
RECEIVED: list = []


def record(command, services):
    """Stands in for the quality handler: the triggers' job is to send the right command once."""
    RECEIVED.append(command)
    return Outcome("ok", "received", {"model": command.model})


@pytest.fixture
def recording_bus(request, monkeypatch):
    from tests.support.aws_events import handler_stack

    stack = handler_stack(request, monkeypatch)
    next(stack)
    RECEIVED.clear()
    handlers = {**COMMAND_HANDLERS, "RunQualityBatch": f"{__name__}:record"}
    bus = MessageBus(bootstrap.build_services(bootstrap.Settings.from_env()), command_handlers=handlers)
    monkeypatch.setattr(bootstrap, "_bus", bus)
    yield bus
    next(stack, None)


def test_timer_sends_one_batch_per_scheduled_time(recording_bus):
    first = scheduler_input("modelpilot-quality", at="2026-11-26T04:30:00Z", execution_id="attempt-1")
    retry = scheduler_input("modelpilot-quality", at="2026-11-26T04:30:00Z", execution_id="attempt-2", attempt="2")
    replies = [quality_batch(e, LambdaContext()) for e in (first, retry)]
    assert first_reply_again(replies)
    [command] = RECEIVED
    assert command.end == datetime(2026, 11, 26, 4, 30, tzinfo=UTC) and command.model is None
    assert command.actor == "system:scheduler" and command.trigger.startswith("schedule:arn:aws:scheduler:")


def test_console_payload_and_a_bad_one(recording_bus):
    quality_batch({"action": "quality", "model": "churn", "environment": "prod", "windows": 3}, LambdaContext())
    [command] = RECEIVED
    assert (command.model, command.environment, command.windows) == ("churn", "prod", 3)
    assert command.actor == "anonymous:console"
    reply = quality_batch({"action": "quality", "windows": 0}, LambdaContext())
    assert reply["status"] == "failed" and reply["error"] == "invalid_event"
    assert len(RECEIVED) == 1


def test_label_file_runs_the_window_of_its_hour_once(recording_bus):
    key = "monitoring/feedback/churn/prod/2026/11/26/07/labels-1.csv"
    event = object_created("bucket", key, version_id="v1")
    replies = [quality_feedback(event, LambdaContext()) for _ in range(2)]
    assert first_reply_again(replies)
    [command] = RECEIVED
    assert (command.model, command.environment) == ("churn", "prod")
    assert command.window_of == datetime(2026, 11, 26, 7, tzinfo=UTC)
    assert command.trigger == f"feedback:s3://bucket/{key}@v1"


def test_other_objects_are_ignored_and_flat_label_files_run_recent_windows(recording_bus):
    reply = quality_feedback(object_created("bucket", "models/churn/v1/model.bin"), LambdaContext())
    assert reply["status"] == "ignored" and not RECEIVED
    quality_feedback(s3_notification("bucket", "monitoring/feedback/churn/prod/labels 2.jsonl"), LambdaContext())
    [command] = RECEIVED
    assert command.window_of is None and command.model == "churn"


def test_translations_without_the_runtime():
    [delivery] = feedback_deliveries(object_created("b", "monitoring/feedback/m/e/2026/13/01/00/x.csv"))
    assert delivery.command.window_of is None  # month 13 is no hour: the recent windows run instead
    [hidden] = feedback_deliveries(object_created("b", "monitoring/feedback/m/e/2026/01/01/00/.part"))
    assert hidden.command is None
    with pytest.raises(InvalidEvent):
        quality_delivery({"nothing": 1}, request_id="r", console_actor="console")
