"""The operator API's canary routes (API Gateway HTTP API, payload 2.0, IAM auth) on moto: status and actions."""

from __future__ import annotations

import json

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.commands import PromoteModel, RegisterModel
from tests.support.aws import put_policy, upload_package
from tests.support.aws_events import LambdaContext, handler, handler_stack, http_request

api = handler("operator_api")
ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
POLICY = """\
version: 1
environments: [dev, prod]
roles:
  - {role: promoter, members: ["arn:aws:iam::123456789012:user/alice"], environments: [dev, prod]}
  - {role: viewer, members: ["arn:aws:iam::123456789012:user/bob"]}
defaults:
  environments:
    prod:
      canary:
        steps: [10, 50, 100]
        interval: 10m
"""


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def call(method, path, body=None, headers=None, **kw):
    event = http_request(method, path, body, **kw)
    event["headers"].update(headers or {})
    response = api(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def canary(aws_stack, make_package):
    """churn v1 live in prod, v2's canary running there at 10 % (revision 1), started by alice."""
    put_policy(aws_stack, POLICY)
    bus = get_bus()
    for n in (1, 2):
        key = upload_package(aws_stack, make_package("churn", auc=0.8 + n / 100), f"models/churn/v{n}")
        uri = f"s3://{aws_stack.bucket}/{key[: -len('/modelpilot.json')]}"
        bus.handle(RegisterModel(package_uri=uri, actor="system:test", auto_promote=True))
        if n == 1:
            assert bus.handle(PromoteModel(model="churn", environment="prod", actor=ALICE, version=1)).status == (
                "promoted"
            )
    status, body = call("POST", "/models/churn/environments/prod/promote", {"version": 2}, user_arn=ALICE)
    assert (status, body["status"]) == (200, "canary_started"), body
    return aws_stack


def audit_count():
    return len(get_bus().services.registry.audit_records("churn"))


def manifest(stack):
    obj = stack.client("s3").get_object(Bucket=stack.bucket, Key="monitoring/serving/churn/prod.json")
    return json.loads(obj["Body"].read())["weights"]


def test_status_shows_the_canary(canary):
    status, body = call("GET", "/models/churn/canaries/prod", user_arn=BOB)
    assert status == 200
    c = body["canary"]
    assert (c["state"], c["stable_version"], c["candidate_version"], c["weight"], c["revision"]) == (
        "running",
        1,
        2,
        10,
        1,
    )
    assert (c["split"], c["steps"]) == ({"1": 90, "2": 10}, [10, 50, 100])
    assert c["next_analysis_at"] > c["step_started_at"]  # the step's analysis is due one interval later


def test_status_needs_the_view_role(canary):
    mallory = "arn:aws:iam::123456789012:user/mallory"
    status, body = call("GET", "/models/churn/canaries/prod", user_arn=mallory)
    assert (status, body["error"]) == (403, "not_authorized"), body
    denied = [r for r in get_bus().services.registry.audit_records("churn") if r.action == "deny"]
    assert [(r.actor, r.evidence.get("attempted")) for r in denied] == [(mallory, "view")]


def test_status_of_an_environment_without_a_canary_is_404(canary):
    status, body = call("GET", "/models/churn/canaries/dev")
    assert (status, body["error"]) == (404, "not_found")
    assert "no canary in dev" in body["message"]
    status, body = call("GET", "/models/churn/canaries/qa")
    assert (status, body["error"]) == (400, "unknown_environment")


def test_pause_resume_abort_as_the_caller_and_the_manifest_follows(canary):
    status, body = call("POST", "/models/churn/canaries/prod/pause", {"reason": "on call", "expected_revision": 1})
    assert (status, body["status"], body["canary"]["revision"]) == (200, "paused", 2), body
    status, body = call("POST", "/models/churn/canaries/prod/resume", {"expected_revision": 2})
    assert (status, body["status"]) == (200, "resumed")
    assert manifest(canary) == {"1": 90, "2": 10}
    status, body = call("POST", "/models/churn/canaries/prod/abort", {"reason": "errors"})
    assert (status, body["status"]) == (200, "aborted"), body
    stored = get_bus().services.registry.get_canary("churn", "prod")
    assert (stored.state, stored.updated_by) == ("aborted", ALICE)
    assert manifest(canary) == {"1": 100}


def test_promote_moves_the_alias_to_the_candidate(canary):
    status, body = call("POST", "/models/churn/canaries/prod/promote", {"expected_revision": 1})
    assert status == 200, body
    assert get_bus().services.registry.get_alias("churn", "prod").version == 2
    assert manifest(canary) == {"2": 100}


def test_a_stale_expected_revision_is_409_with_the_current_revision_and_changes_nothing(canary):
    call("POST", "/models/churn/canaries/prod/pause", {"expected_revision": 1})
    before = audit_count()
    status, body = call("POST", "/models/churn/canaries/prod/abort", {"expected_revision": 1})
    assert (status, body["error"], body["current_revision"]) == (409, "concurrency_conflict", 2), body
    assert body["canary"]["state"] == "paused"
    assert audit_count() == before
    assert get_bus().services.registry.get_canary("churn", "prod").state == "paused"


def test_the_idempotency_key_is_the_trigger_and_a_retry_changes_nothing(canary):
    headers = {"Idempotency-Key": "pause-7f3a"}
    first = call("POST", "/models/churn/canaries/prod/pause", {"expected_revision": 1}, headers)
    before = audit_count()
    again = call("POST", "/models/churn/canaries/prod/pause", {"expected_revision": 1}, headers)
    assert (first[0], first[1]["status"]) == (200, "paused")
    assert (again[0], again[1]["status"]) == (200, "unchanged")  # the retry saw its own change, not a conflict
    assert audit_count() == before
    assert get_bus().services.registry.audit_records("churn")[-1].trigger == "api:pause-7f3a"


def test_a_caller_without_the_role_is_403_and_changes_nothing(canary):
    before = audit_count()
    status, body = call("POST", "/models/churn/canaries/prod/abort", {}, user_arn=BOB)
    assert (status, body["error"]) == (403, "not_authorized")
    assert get_bus().services.registry.get_canary("churn", "prod").state == "running"
    assert audit_count() == before + 1  # the denial itself is audited
    status, body = call("POST", "/models/churn/canaries/prod/abort", {}, user_arn=None)
    assert status == 403 and "IAM" in body["message"]
    assert call("GET", "/models/churn/canaries/prod", user_arn=None)[0] == 403


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/models/churn/canaries/prod/rollback", {}, 404),
        ("/models/ghost/canaries/prod/pause", {}, 404),
        ("/models/churn/canaries/dev/pause", {}, 404),
        ("/models/churn/canaries/prod/pause", {"expected_revision": "1"}, 400),
        ("/models/churn/canaries/prod/pause", {"weight": 50}, 400),
        ("/models/churn/canaries/qa/pause", {}, 400),
    ],
)
def test_unknown_and_bad_requests_change_nothing(canary, path, body, status):
    before = audit_count()
    got, reply = call("POST", path, body)
    assert got == status, reply
    assert audit_count() == before
    assert get_bus().services.registry.get_canary("churn", "prod").revision == 1


def test_the_status_routes_show_the_active_canary(canary):
    status, body = call("GET", "/models/churn/status", user_arn=BOB)
    assert status == 200
    rows = {r["environment"]: r for r in body["status"]}
    assert rows["prod"]["version"] == 1
    assert (rows["prod"]["canary"]["candidate_version"], rows["prod"]["canary"]["weight"]) == (2, 10)
    assert rows["prod"]["canary"]["state"] == "running"
    assert rows["dev"]["canary"] is None
    assert call("GET", "/status", user_arn=BOB)[1]["status"] == body["status"]
