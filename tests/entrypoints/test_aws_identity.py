"""Who the AWS functions say acted: canonical IAM principals on the operator API, anonymous console callers; on moto."""

from __future__ import annotations

import copy
import json

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.commands import RegisterModel
from modelpilot.exceptions import NotAuthorized
from tests.support.aws import put_policy, upload_package
from tests.support.aws_events import LambdaContext, handler, handler_stack, http_request, load

api, promote_fn, rollback_fn = handler("operator_api"), handler("promote"), handler("rollback")
ROLE = "arn:aws:sts::123456789012:assumed-role/Approvers"
BOB = "arn:aws:iam::123456789012:user/bob"
POLICY = """\
version: 1
environments: [dev, prod]
defaults:
  environments:
    prod: {approvals: 2}
"""


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def register(stack, make_package, n):
    """Upload and register churn v<n> (the upload promotes it to dev)."""
    key = upload_package(stack, make_package("churn", auc=0.8 + n / 100), f"models/churn/v{n}")
    get_bus().handle(
        RegisterModel(package_uri=f"s3://{stack.bucket}/{key[:-16]}", actor="system:test", auto_promote=True)
    )


@pytest.fixture
def churn(aws_stack, make_package):
    """churn v1 and v2 registered, v2 in dev; prod needs two approvals."""
    put_policy(aws_stack, POLICY)
    for n in (1, 2):
        register(aws_stack, make_package, n)
    return aws_stack


@pytest.fixture
def ungated(aws_stack, make_package):
    """churn v1 in dev, no approvals needed; ``ungated.more(n)`` registers v<n>."""
    put_policy(aws_stack, POLICY.replace("approvals: 2", "approvals: 0"))
    register(aws_stack, make_package, 1)
    aws_stack.more = lambda n: register(aws_stack, make_package, n)
    return aws_stack


def as_session(event, session: str):
    """The same request signed with another session of the role (the caller picks the session name)."""
    event = copy.deepcopy(event)
    event["requestContext"]["requestId"] = f"req-{session}"
    iam = event["requestContext"]["authorizer"]["iam"]
    iam["userArn"] = f"{ROLE}/{session}"
    iam["userId"] = iam["callerId"] = f"AROAEXAMPLEROLEID:{session}"
    return event


def reply(event):
    response = api(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_two_sessions_of_one_role_cannot_meet_two_approvals(churn):
    delivered = load("api_gateway_v2_iam_assumed_role_approve.json")
    assert reply(delivered)[1]["status"] == "approved"
    assert reply(as_session(delivered, "alice-2"))[1]["status"] == "unchanged"
    registry = get_bus().services.registry
    assert [a.approver for a in registry.list_approvals("churn", 2, "prod")] == [ROLE.lower()]
    status, body = reply(http_request("POST", "/models/churn/environments/prod/promote", {"version": 2}))
    assert status == 409 and body["status"] == "blocked"
    # a second principal makes it two
    status, body = reply(
        http_request("POST", "/models/churn/versions/2/approve", {"environment": "prod"}, user_arn=BOB)
    )
    assert status == 200 and body["status"] == "approved"
    status, body = reply(http_request("POST", "/models/churn/environments/prod/promote", {"version": 2}))
    assert status == 200 and body["status"] == "promoted"


def test_an_assumed_role_acts_as_the_role_not_the_session(ungated):
    event = as_session(http_request("POST", "/models/churn/environments/prod/promote", {"version": 1}), "anything")
    status, body = reply(event)
    assert status == 200, body
    registry = get_bus().services.registry
    assert registry.get_alias("churn", "prod").updated_by == ROLE.lower()
    assert registry.audit_records("churn")[-1].actor == ROLE.lower()


@pytest.mark.parametrize("arn", ["", "system:ops", "ALICE"])
def test_a_user_arn_that_is_no_arn_is_refused(churn, arn):
    event = http_request("POST", "/models/churn/versions/2/approve", {"environment": "prod"}, user_arn=arn)
    status, body = reply(event)
    assert status == 403 and body["error"] == "not_authorized"
    assert get_bus().services.registry.list_approvals("churn", 2, "prod") == []


def test_a_console_invocation_is_anonymous_and_cannot_approve(churn):
    payload = {"action": "approve", "model": "churn", "version": 2, "environment": "prod", "comment": "ok"}
    out = promote_fn(payload, LambdaContext())
    assert (out["status"], out["error"]) == ("failed", NotAuthorized.code) and "cannot approve" in out["message"]
    registry = get_bus().services.registry
    assert registry.list_approvals("churn", 2, "prod") == []
    denial = registry.audit_records("churn")[-1]
    assert (denial.action, denial.actor) == ("deny", "anonymous:console")


def test_a_console_rollback_is_recorded_as_anonymous(ungated):
    promote_fn({"action": "promote", "model": "churn", "environment": "prod", "version": 1}, LambdaContext())
    ungated.more(2)
    promote_fn({"action": "promote", "model": "churn", "environment": "prod", "version": 2}, LambdaContext())
    out = rollback_fn({"action": "rollback", "model": "churn", "environment": "prod", "reason": "p95"}, LambdaContext())
    assert out["status"] == "rolled_back"
    assert get_bus().services.registry.audit_records("churn")[-1].actor == "anonymous:console"
