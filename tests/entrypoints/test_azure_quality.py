"""The quality functions on Azure: the timer's key, and BlobCreated of label files (both Event Grid schemas)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from modelpilot.entrypoints.azure.envelope import parse_envelope
from modelpilot.entrypoints.azure.quality import feedback_translation, quality_timer
from modelpilot.exceptions import InvalidEvent
from tests.support.aws_events import load


def blob_event(name: str, *, schema: str = "eventgrid", etag: str = "0x8D9") -> dict:
    if schema == "eventgrid":
        event = copy.deepcopy(load("eventgrid_blob_created.json"))
        event = event[0] if isinstance(event, list) else event
        event["subject"] = f"/blobServices/default/containers/models/blobs/{name}"
    else:
        event = copy.deepcopy(load("eventgrid_blob_created_cloudevents.json"))
        event = event[0] if isinstance(event, list) else event
        event["subject"] = f"/blobServices/default/containers/models/blobs/{name}"
    event["data"]["url"] = f"https://acct.blob.core.windows.net/models/{name}"
    event["data"]["eTag"] = etag
    return event


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_label_file_runs_its_window(schema):
    name = "monitoring/feedback/churn/prod/2026/03/01/09/labels.jsonl"
    done = feedback_translation(parse_envelope(blob_event(name, schema=schema)), container="models")
    assert done is not None
    command = done.command
    assert (command.model, command.environment) == ("churn", "prod")
    assert command.window_of == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert done.key == f"feedback:models/{name}@0x8D9"


def test_other_blobs_and_other_containers_are_ignored():
    assert feedback_translation(parse_envelope(blob_event("models/churn/modelpilot.json")), container="models") is None
    other = blob_event("monitoring/feedback/churn/prod/x.csv")
    assert feedback_translation(parse_envelope(other), container="elsewhere") is None


def test_wrong_event_type_is_invalid():
    event = blob_event("monitoring/feedback/churn/prod/x.csv")
    event["eventType" if "eventType" in event else "type"] = "Microsoft.Storage.BlobDeleted"
    with pytest.raises(InvalidEvent):
        feedback_translation(parse_envelope(event), container="models")


def test_timer_key_is_the_minute():
    a = quality_timer(datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC))
    b = quality_timer(datetime(2026, 3, 1, 9, 30, 55, tzinfo=UTC), past_due=True)
    assert a.key == b.key == "timer:quality:2026-03-01T09:30"
    assert a.command.end == datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC) and a.command.model is None
    assert "past due" in b.source
