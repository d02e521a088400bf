"""The canary routes' shared edge (modelpilot.entrypoints.canary): request → ChangeCanary, and the replies."""

from __future__ import annotations

import base64
import json

import pytest

from modelpilot.entrypoints.canary import change_command
from modelpilot.exceptions import InvalidInput, NotFound, PayloadTooLarge

ALICE = "arn:aws:iam::123456789012:user/alice"


@pytest.mark.parametrize("action", ["pause", "resume", "abort", "promote"])
def test_each_action_becomes_a_change_canary(action):
    body = json.dumps({"reason": "latency", "expected_revision": 4})
    command = change_command("churn", "prod", action, body, ALICE, "api:k-1")
    assert (command.model, command.environment, command.action, command.actor) == ("churn", "prod", action, ALICE)
    assert (command.reason, command.expected_revision, command.trigger) == ("latency", 4, "api:k-1")


def test_an_empty_body_acts_on_the_canary_as_it_is_with_a_default_reason():
    command = change_command("churn", "prod", "pause", None, ALICE, None)
    assert command.expected_revision is None and command.trigger is None
    assert command.reason == f"pause by {ALICE}"


def test_a_base64_body_as_api_gateway_sends_it():
    raw = base64.b64encode(b'{"expected_revision": 0}').decode()
    assert change_command("churn", "prod", "abort", raw, ALICE, None, base64_encoded=True).expected_revision == 0


@pytest.mark.parametrize("action", ["rollback", "PAUSE", "", "pause/", "x" * 500])
def test_an_unknown_action_is_not_found_naming_the_actions(action):
    with pytest.raises(NotFound, match="pause, resume, abort, promote") as err:
        change_command("churn", "prod", action, "{}", ALICE, None)
    assert err.value.http_status == 404
    assert len(err.value.details["action"]) <= 40


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expected_revision": "4"}, "expected_revision"),
        ({"expected_revision": -1}, "expected_revision"),
        ({"expected_revision": True}, "expected_revision"),
        ({"reason": 5}, "reason"),
        ({"reason": "x" * 5000}, "reason"),
        ({"weight": 50}, "weight"),
    ],
)
def test_a_bad_body_is_invalid_input_naming_the_field(body, field):
    with pytest.raises(InvalidInput) as err:
        change_command("churn", "prod", "pause", json.dumps(body), ALICE, None)
    assert err.value.http_status == 400 and field in err.value.message


def test_a_body_that_is_not_an_object_or_too_large_is_refused():
    with pytest.raises(InvalidInput):
        change_command("churn", "prod", "pause", "[1]", ALICE, None)
    with pytest.raises(InvalidInput):
        change_command("churn", "prod", "pause", "{nope", ALICE, None)
    with pytest.raises(PayloadTooLarge):
        change_command("churn", "prod", "pause", json.dumps({"reason": "x" * 70_000}), ALICE, None)
