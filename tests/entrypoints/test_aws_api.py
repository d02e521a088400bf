"""Operator HTTP API function: API Gateway HTTP API (payload 2.0, IAM auth) requests, on moto."""

from __future__ import annotations

import base64
import json

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.commands import RegisterModel
from tests.support.aws import put_policy, upload_package
from tests.support.aws_events import LambdaContext, handler, handler_stack, http_request, load

api = handler("operator_api")
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:role/ops/bob"


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def call(method, path, body=None, **kw):
    response = api(http_request(method, path, body, **kw), LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def add_version(stack, make_package, n):
    """Upload and register churn v<n> (the upload promotes it to dev, the first environment)."""
    key = upload_package(stack, make_package("churn", auc=0.8 + n / 100), f"models/churn/v{n}")
    get_bus().handle(
        RegisterModel(package_uri=f"s3://{stack.bucket}/{key[:-16]}", actor="system:test", auto_promote=True)
    )


@pytest.fixture
def churn(aws_stack, make_package):
    """churn v1 in dev; tests add v2 when they need it (promotion order: dev before prod)."""
    put_policy(aws_stack)
    add_version(aws_stack, make_package, 1)
    aws_stack.more = lambda n: add_version(aws_stack, make_package, n)
    return aws_stack


def test_promote_records_the_iam_principal_as_actor(churn):
    status, body = call(
        "POST", "/models/churn/environments/prod/promote", {"version": 1, "reason": "release"}, user_arn=ALICE
    )
    assert status == 200 and body["status"] == "promoted"
    registry = get_bus().services.registry
    assert registry.get_alias("churn", "prod").updated_by == ALICE
    assert registry.audit_records("churn")[-1].actor == ALICE


def test_the_derived_fixture_as_delivered(churn):
    response = api(load("api_gateway_v2_iam_promote.json"), LambdaContext())
    assert response["statusCode"] == 200, response["body"]
    assert json.loads(response["body"])["version"] == 1


def test_rollback_history_and_status(churn):
    call("POST", "/models/churn/environments/prod/promote", {"version": 1})
    churn.more(2)
    call("POST", "/models/churn/environments/prod/promote", {"version": 2})
    status, body = call("POST", "/models/churn/environments/prod/rollback", {"reason": "bad latency"}, user_arn=BOB)
    assert status == 200 and body["status"] == "rolled_back" and body["version"] == 1
    status, body = call("GET", "/models/churn/environments/prod/history")
    assert status == 200
    assert [(c["to_version"], c["action"], c["actor"]) for c in body["history"]] == [
        (1, "promote", ALICE),
        (2, "promote", ALICE),
        (1, "rollback", BOB),
    ]
    status, body = call("GET", "/models/churn/status")
    assert {r["environment"]: r["version"] for r in body["status"]} == {"dev": 2, "prod": 1}
    assert call("GET", "/status")[1]["status"] == body["status"]


def test_approve_uses_the_caller_as_approver(churn):
    churn.more(2)
    status, body = call(
        "POST", "/models/churn/versions/2/approve", {"environment": "prod", "comment": "lgtm"}, user_arn=BOB
    )
    assert status == 200 and body["status"] == "approved"
    assert [a.approver for a in get_bus().services.registry.list_approvals("churn", 2, "prod")] == [BOB]


def test_base64_body_is_decoded(churn):
    event = http_request("POST", "/models/churn/environments/prod/promote")
    event["body"] = base64.b64encode(json.dumps({"version": 1}).encode()).decode()
    event["isBase64Encoded"] = True
    assert json.loads(api(event, LambdaContext())["body"])["status"] == "promoted"


def test_request_without_iam_identity_is_refused(churn):
    status, body = call("POST", "/models/churn/environments/prod/promote", {"version": 1}, user_arn=None)
    assert status == 403 and body["error"] == "not_authorized"
    assert get_bus().services.registry.get_alias("churn", "prod") is None


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "error"),
    [
        ("POST", "/models/churn/environments/prod/promote", {"version": "two"}, 400, "invalid_event"),
        ("POST", "/models/churn/environments/prod/promote", {"nope": 1}, 400, "invalid_event"),
        ("POST", "/models/churn/environments/prod/rollback", {}, 400, "invalid_event"),
        ("POST", "/models/churn/environments/moon/promote", {"version": 1}, 400, "unknown_environment"),
        ("POST", "/models/ghost/environments/prod/promote", {"version": 1}, 404, "unknown_model"),
        ("POST", "/models/churn/versions/x/approve", {"environment": "prod"}, 400, "invalid_input"),
        ("GET", "/models/ghost/status", None, 404, "unknown_model"),
    ],
)
def test_bad_requests_get_typed_errors_and_change_nothing(churn, method, path, body, code, error):
    before = len(get_bus().services.registry.audit_records("churn"))
    status, reply = call(method, path, body)
    assert (status, reply["error"]) == (code, error)
    assert len(get_bus().services.registry.audit_records("churn")) == before


def test_body_that_is_not_json(churn):
    event = http_request("POST", "/models/churn/environments/prod/promote")
    event["body"] = "{not json"
    response = api(event, LambdaContext())
    assert response["statusCode"] == 400 and "not JSON" in json.loads(response["body"])["message"]


# -- Idempotency-Key and from_version, as on Azure ------------------------------------------------------
def keyed(method, path, body, key, **kw):
    """Call the API with an ``Idempotency-Key`` header (a fresh request id each time, as a client retry has)."""
    event = http_request(method, path, body, **kw)
    event.setdefault("headers", {})["idempotency-key"] = key
    response = api(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_retried_rollback_with_an_idempotency_key_rolls_back_once(churn):
    assert call("POST", "/models/churn/environments/prod/promote", {"version": 1})[1]["status"] == "promoted"
    for n in (2, 3):
        churn.more(n)
        assert call("POST", "/models/churn/environments/prod/promote", {"version": n})[1]["status"] == "promoted"
    path = "/models/churn/environments/prod/rollback"
    replies = [keyed("POST", path, {"reason": "errors"}, "3f1d2c4b-rollback-1", user_arn=BOB) for _ in range(3)]
    assert [(s, b["status"]) for s, b in replies] == [(200, "rolled_back"), (200, "noop"), (200, "noop")]
    assert "already applied" in replies[1][1]["message"]
    registry = get_bus().services.registry
    assert registry.get_alias("churn", "prod").version == 2  # v3 -> v2, never v1
    rollbacks = [r for r in registry.audit_records("churn") if r.action == "rollback"]
    assert [(r.from_version, r.to_version, r.trigger) for r in rollbacks] == [(3, 2, "api:3f1d2c4b-rollback-1")]
    # another key is another request
    status, body = keyed("POST", path, {"reason": "still errors"}, "3f1d2c4b-rollback-2", user_arn=BOB)
    assert (status, body["status"], body["version"]) == (200, "rolled_back", 1)


def test_a_retried_promotion_with_an_idempotency_key_promotes_once(churn):
    path = "/models/churn/environments/prod/promote"
    first = keyed("POST", path, {"version": 1}, "promote-k1")
    assert first[1]["status"] == "promoted"
    churn.more(2)
    call("POST", path, {"version": 2})  # someone else moves prod on
    again = keyed("POST", path, {"version": 1}, "promote-k1")  # the first client's retry
    assert again[1]["status"] == "unchanged" and "already applied" in again[1]["message"]
    assert get_bus().services.registry.get_alias("churn", "prod").version == 2


def test_rollback_from_version_is_conditional(churn):
    call("POST", "/models/churn/environments/prod/promote", {"version": 1})
    churn.more(2)
    call("POST", "/models/churn/environments/prod/promote", {"version": 2})
    path = "/models/churn/environments/prod/rollback"
    status, body = call("POST", path, {"reason": "v1 was bad", "from_version": 1})
    assert (status, body["status"]) == (200, "noop") and "no longer runs v1" in body["message"]
    assert get_bus().services.registry.get_alias("churn", "prod").version == 2
    status, body = call("POST", path, {"reason": "v2 is bad", "from_version": 2})
    assert (status, body["status"], body["version"]) == (200, "rolled_back", 1)


@pytest.mark.parametrize("key", ["x" * 256, "naïve-ключ", "tab\tinside"])
def test_a_malformed_idempotency_key_is_refused_and_changes_nothing(churn, key):
    before = get_bus().services.registry.audit_records("churn")
    status, body = keyed("POST", "/models/churn/environments/prod/promote", {"version": 1}, key)
    assert (status, body["error"]) == (400, "invalid_input") and "Idempotency-Key" in body["message"]
    assert get_bus().services.registry.audit_records("churn") == before


def test_promote_from_version_is_conditional(churn):
    path = "/models/churn/environments/prod/promote"
    call("POST", path, {"version": 1})
    churn.more(2)
    status, body = call("POST", path, {"version": 2, "from_version": 3})
    assert (status, body["status"]) == (200, "noop") and get_bus().services.registry.get_alias(
        "churn", "prod"
    ).version == 1
    status, body = call("POST", path, {"version": 2, "from_version": 1})
    assert (status, body["status"], body["version"]) == (200, "promoted", 2)


VERA, MALLORY = "arn:aws:iam::123456789012:user/vera", "arn:aws:iam::123456789012:user/mallory"
VIEWER_POLICY = f"""\
version: 1
environments: [dev, prod]
roles:
  - {{role: admin, members: ["{ALICE}"]}}
  - {{role: viewer, members: ["{VERA}"]}}
"""
READS = [
    "/status",
    "/models/churn/status",
    "/models/churn/environments/prod/history",
    "/models/churn/environments/prod/incident",
    "/models/churn/canaries/prod",
]


def denied_reads():
    records = get_bus().services.registry.audit_records("churn")
    return [(r.actor, r.evidence.get("attempted")) for r in records if r.action == "deny"]


def test_reads_need_the_view_role_when_the_policy_declares_roles(aws_stack, make_package):
    put_policy(aws_stack, VIEWER_POLICY)
    add_version(aws_stack, make_package, 1)
    for path in READS[:3]:
        status, body = call("GET", path, user_arn=VERA)
        assert status == 200, (path, body)
    assert {r["environment"]: r["version"] for r in call("GET", READS[1], user_arn=VERA)[1]["status"]} == {
        "dev": 1,
        "prod": None,
    }
    for path in READS:
        status, body = call("GET", path, user_arn=MALLORY)
        assert (status, body["error"]) == (403, "not_authorized"), path
    # each denied read of the model is audited as a denied write is (the fleet-wide status names no model)
    assert denied_reads() == [(MALLORY, "view")] * 4
    status, body = call("GET", READS[4], user_arn=VERA)  # a viewer may look: prod never had a canary
    assert (status, body["error"]) == (404, "not_found"), body
    assert call("GET", READS[0], user_arn=None)[0] == 403  # no IAM identity at all


def test_reads_are_open_when_the_policy_declares_no_roles(churn):
    for path in READS[:3]:
        assert call("GET", path, user_arn=MALLORY)[0] == 200, path
    assert denied_reads() == []
