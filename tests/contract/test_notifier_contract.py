"""One contract for every Notifier: what a reader receives is what was sent.

Every implementation must:

* deliver each ``notify`` once, in order, with its message unchanged (line
  breaks and non-ASCII text included) and its attributes (none: empty);
* accept any subject: a backend with rules for subjects (SNS: at most 100
  printable ASCII characters) may rewrite it, but keeps its readable start;
* accept attributes with empty values (a backend that cannot carry them drops them);
* deliver a message too long for its backend cut to fit, with a note saying so,
  rather than fail the command that already changed state;
* raise ``TransientError`` when the backend is unreachable or throttling, and a
  permanent typed ``ModelPilotError`` (never a raw SDK error) when it refuses.
"""

from __future__ import annotations

import pytest

from modelpilot.exceptions import ModelPilotError, NotAuthorized, NotFound, TransientError
from tests.support import outbound
from tests.support.outbound import Notification

SUBJECT = "[modelpilot] ModelRolledBack"
MESSAGE = "churn prod rolled back v2 -> v1 by system:slo\nreason: burn rate 14.4 — budget left 12.5% ✓"


def test_a_notification_arrives_with_its_subject_message_and_attributes(notifier_case):
    attributes = {"event": "ModelRolledBack", "model": "churn"}
    notifier_case.notifier.notify(SUBJECT, MESSAGE, attributes=attributes)
    assert notifier_case.notified() == [Notification(SUBJECT, MESSAGE, attributes)]


def test_notifications_arrive_once_each_in_order(notifier_case):
    for n in range(3):
        notifier_case.notifier.notify(f"{SUBJECT} {n}", f"{MESSAGE} #{n}", attributes={"n": str(n)})
    got = notifier_case.notified()
    assert [(g.subject, g.message, g.attributes) for g in got] == [
        (f"{SUBJECT} {n}", f"{MESSAGE} #{n}", {"n": str(n)}) for n in range(3)
    ]


def test_without_attributes_none_arrive(notifier_case):
    notifier_case.notifier.notify(SUBJECT, MESSAGE)
    assert notifier_case.notified() == [Notification(SUBJECT, MESSAGE, {})]


def test_attributes_with_empty_values_are_accepted(notifier_case):
    notifier_case.notifier.notify(SUBJECT, MESSAGE, attributes={"event": "ModelRolledBack", "error": ""})
    [got] = notifier_case.notified()
    assert got.message == MESSAGE
    assert got.attributes.pop("event") == "ModelRolledBack"
    assert got.attributes in ({}, {"error": ""})


def test_any_subject_is_accepted_and_keeps_its_readable_start(notifier_case):
    subject = f"{SUBJECT} ✓ churn\nprod " + "x" * 300
    notifier_case.notifier.notify(subject, MESSAGE)
    [got] = notifier_case.notified()
    assert got.message == MESSAGE
    assert got.subject.startswith(f"{SUBJECT} ") and 0 < len(got.subject) <= len(subject)


def test_a_message_too_long_for_the_backend_arrives_cut_with_a_note(notifier_case):
    line = "feature_é_✓ drifted; "
    message = line * (1_200_000 // len(line.encode()) + 1)  # over 1 MB: more than any backend carries
    notifier_case.notifier.notify(SUBJECT, message, attributes={"event": "DriftDetected"})
    [got] = notifier_case.notified()
    assert got.attributes == {"event": "DriftDetected"}
    limit = notifier_case.limits.message_bytes
    if limit is None:
        assert got.message == message
        return
    kept, _, note = got.message.rpartition("\n[message cut: ")
    assert message.startswith(kept) and len(kept.encode()) > limit // 2
    assert note == f"{len(message.encode())} bytes, more than this channel carries]"
    assert len(got.message.encode()) <= limit


@pytest.mark.parametrize("kind", ["jsonl-notifier", "sns", "eventgrid-notifier"])
def test_an_unreachable_backend_is_a_transient_error(kind, request, tmp_path):
    notifier = outbound.failing(kind, "unreachable", request, tmp_path)
    with pytest.raises(TransientError):
        notifier.notify(SUBJECT, MESSAGE)


@pytest.mark.parametrize("kind", ["sns", "eventgrid-notifier"])
def test_a_throttling_backend_is_a_transient_error(kind, request, tmp_path):
    notifier = outbound.failing(kind, "throttled", request, tmp_path)
    with pytest.raises(TransientError):
        notifier.notify(SUBJECT, MESSAGE)


@pytest.mark.parametrize(
    ("kind", "failure", "error"),
    [
        ("sns", "unknown", ModelPilotError),
        ("eventgrid-notifier", "unknown", NotFound),
        ("eventgrid-notifier", "forbidden", NotAuthorized),
    ],
)
def test_a_refusal_is_a_permanent_typed_error(kind, failure, error, request, tmp_path):
    notifier = outbound.failing(kind, failure, request, tmp_path)
    with pytest.raises(error) as info:
        notifier.notify(SUBJECT, MESSAGE)
    assert not info.value.retryable
