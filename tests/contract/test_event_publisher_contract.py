"""One contract for every EventPublisher: what a consumer reads back is what was published.

Every implementation must:

* deliver the events of one ``publish`` in order, each with its name, its
  ``to_dict()`` payload unchanged (nested values, None, floats, non-ASCII text)
  and the ``traceparent`` given (None when none was);
* treat an empty batch as nothing to do: nothing published, no request sent;
* split a batch larger than one request of its backend takes (EventBridge: ten
  entries and 256 KiB; Event Grid: 5,000 events and 1 MB) and still deliver all
  of it, in order;
* refuse an event too large for its backend with ``InvalidInput`` before
  anything of the batch is sent;
* raise ``TransientError`` when the backend is unreachable or throttling, and a
  permanent typed ``ModelPilotError`` (never a raw SDK error) when it refuses.
"""

from __future__ import annotations

import pytest

from modelpilot.domain.events import (
    DriftDetected,
    ModelApproved,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    ModelRolledBack,
    PromotionBlocked,
    RollbackSkipped,
    SloBurnAlert,
)
from modelpilot.exceptions import InvalidInput, ModelPilotError, NotAuthorized, NotFound, TransientError
from tests.support import outbound
from tests.support.outbound import Published

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTHER_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
DIGEST = "d" * 64


def every_kind():
    """One event of each kind, with the awkward values a payload can hold."""
    return [
        ModelRegistered("churn", 1, DIGEST, "alice@example.com"),
        ModelPromoted("churn", "staging", 1, None, 1, "alice", DIGEST),
        PromotionBlocked("churn", "prod", 2, "bob", ["threshold:auc", "soak"], ["auc=0.7 < 0.8", "1h of 6h"], DIGEST),
        ModelApproved("churn", 2, "prod", "carol"),
        ModelRejected("churn", 3, "dana", "biais détecté ✗ — voir le rapport"),
        ModelRolledBack(
            "churn",
            "prod",
            2,
            1,
            4,
            "system:slo",
            "burn rate 14.4",
            "alert-7",
            {"burn_rate": 14.4, "windows": ["1h", "5m"], "labels": {"team": "risk"}, "missing": None},
        ),
        RollbackSkipped("churn", "prod", "system:drift", "cooldown: rolled back 10 min ago"),
        DriftDetected("churn", "prod", None, "critical", ["age", "plan"], "r-1", "mem://reports/r-1.json"),
        SloBurnAlert("churn", "prod", 2, "availability", "page", "1h", "5m", 14.5, 15.25, 14.4, 0.125, "alert-8"),
    ]


def expected(events, traceparent):
    return [Published(e.name, e.to_dict(), traceparent) for e in events]


def test_every_kind_of_event_arrives_in_order_with_name_payload_and_traceparent(publisher_case):
    events = every_kind()
    publisher_case.publisher.publish(events, traceparent=TRACEPARENT)
    assert publisher_case.published() == expected(events, TRACEPARENT)


def test_without_a_traceparent_none_arrives(publisher_case):
    events = every_kind()[:3]
    publisher_case.publisher.publish(events)
    assert publisher_case.published() == expected(events, None)


def test_each_publish_keeps_its_own_traceparent_and_the_order_of_calls(publisher_case):
    first, second = every_kind()[:2], every_kind()[5:7]
    publisher_case.publisher.publish(first, traceparent=TRACEPARENT)
    publisher_case.publisher.publish(second, traceparent=OTHER_TRACEPARENT)
    assert publisher_case.published() == expected(first, TRACEPARENT) + expected(second, OTHER_TRACEPARENT)


def test_an_empty_batch_publishes_and_sends_nothing(publisher_case):
    publisher_case.publisher.publish([], traceparent=TRACEPARENT)
    assert publisher_case.published() == []
    if publisher_case.requests is not None:
        assert publisher_case.requests() == []


def _accepted_in_several_requests(case, count):
    if case.requests is None:
        return
    requests = case.requests()
    assert all(accepted for accepted, _ in requests), requests
    assert sum(n for _, n in requests) == count and len(requests) > 1


def test_more_events_than_one_request_takes_arrive_whole_and_in_order(publisher_case):
    count = 2 * (publisher_case.limits.events_per_request or 10) + 3
    events = [ModelRegistered("churn", n, DIGEST, "alice") for n in range(1, count + 1)]
    publisher_case.publisher.publish(events, traceparent=TRACEPARENT)
    assert publisher_case.published() == expected(events, TRACEPARENT)
    _accepted_in_several_requests(publisher_case, count)


def test_more_bytes_than_one_request_takes_arrive_whole_and_in_order(publisher_case):
    third = (publisher_case.limits.bytes_per_request or 256 * 1024) // 3
    events = [
        ModelRolledBack("churn", "prod", 2, 1, n, "system:slo", "burn", f"alert-{n}", {"note": str(n) * third})
        for n in range(1, 8)
    ]
    publisher_case.publisher.publish(events, traceparent=TRACEPARENT)
    assert publisher_case.published() == expected(events, TRACEPARENT)
    _accepted_in_several_requests(publisher_case, len(events))


@pytest.mark.parametrize("kind", ["eventbridge", "eventgrid"])
def test_an_event_too_large_for_the_backend_is_refused_before_anything_is_sent(kind, request, tmp_path):
    case = outbound.publisher_case(kind, request, tmp_path)
    huge = ModelRolledBack("churn", "prod", 2, 1, 2, "a", "r", None, {"note": "x" * case.limits.bytes_per_request})
    with pytest.raises(InvalidInput, match="nothing of this batch was published"):
        case.publisher.publish([*every_kind()[:2], huge])
    assert case.published() == []
    assert case.requests() == []


@pytest.mark.parametrize("kind", ["jsonl-publisher", "eventbridge", "eventgrid-publisher"])
def test_an_unreachable_backend_is_a_transient_error(kind, request, tmp_path):
    publisher = outbound.failing(kind, "unreachable", request, tmp_path)
    with pytest.raises(TransientError):
        publisher.publish(every_kind()[:1], traceparent=TRACEPARENT)


@pytest.mark.parametrize("kind", ["eventbridge", "eventgrid-publisher"])
def test_a_throttling_backend_is_a_transient_error(kind, request, tmp_path):
    publisher = outbound.failing(kind, "throttled", request, tmp_path)
    with pytest.raises(TransientError):
        publisher.publish(every_kind()[:1])


@pytest.mark.parametrize(
    ("kind", "failure", "error"),
    [
        ("eventbridge", "unknown", ModelPilotError),
        ("eventgrid-publisher", "unknown", NotFound),
        ("eventgrid-publisher", "forbidden", NotAuthorized),
    ],
)
def test_a_refusal_is_a_permanent_typed_error(kind, failure, error, request, tmp_path):
    publisher = outbound.failing(kind, failure, request, tmp_path)
    with pytest.raises(error) as info:
        publisher.publish(every_kind()[:1])
    assert not info.value.retryable
