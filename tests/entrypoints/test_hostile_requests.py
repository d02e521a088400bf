"""Hostile operator requests on both clouds: each ends in a typed 4xx reply and changes nothing.

AWS: the API Gateway HTTP API function on moto's server. Azure: the HTTP functions as the host
calls them, on Azurite. Every request here ended in a traceback (HTTP 500) or did the wrong thing
before the body parser and the principal reader were made total.
"""

from __future__ import annotations

import base64
import json

import pytest

from modelpilot.bootstrap import get_bus
from tests.entrypoints.test_aws_api import aws_stack, call, churn  # noqa: F401  (fixtures)
from tests.entrypoints.test_azure_operator_api import app, as_user, promote, registered  # noqa: F401  (fixtures)
from tests.support.aws_events import LambdaContext, handler, http_request

api = handler("operator_api")
PROMOTE = "/models/churn/environments/prod/promote"
DEEP = "[" * 5000 + "]" * 5000


def _raw(body: str | None, *, b64: bool = False) -> tuple[int, dict]:
    event = http_request("POST", PROMOTE)
    event["body"] = body
    event["isBase64Encoded"] = b64
    response = api(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def _unchanged_aws() -> None:
    registry = get_bus().services.registry
    assert registry.get_alias("churn", "prod") is None
    assert [r.action for r in registry.audit_records("churn")].count("promote") == 1  # v1 into dev, nothing else


@pytest.mark.parametrize(
    ("body", "b64", "status", "error", "words"),
    [
        ("not base64 at all!", True, 400, "invalid_input", "base64"),
        (base64.b64encode(b"\xff\xfe{}").decode(), True, 400, "invalid_input", "UTF-8"),
        (DEEP, False, 400, "invalid_input", "nested"),
        (json.dumps({"version": 1, "reason": "x" * 20_000_000}), False, 413, "payload_too_large", "KiB"),
        (json.dumps({"version": True}), False, 400, "invalid_event", "version"),
        (json.dumps({"version": "1"}), False, 400, "invalid_event", "version"),
        (json.dumps({"version": 2**63}), False, 400, "invalid_event", "version"),
        (json.dumps({"version": 1, "reason": "\ud800"}), False, 400, "invalid_input", "surrogate"),
        (json.dumps({"version": 1, "reason": "r" * 5000}), False, 400, "invalid_event", "reason"),
    ],
)
def test_aws_hostile_bodies_get_typed_4xx_and_change_nothing(churn, body, b64, status, error, words):  # noqa: F811
    got, reply = _raw(body, b64=b64)
    assert (got, reply["error"]) == (status, error), reply
    assert words in reply["message"]
    _unchanged_aws()


def test_aws_a_version_in_the_path_beyond_64_bits_is_refused(churn):  # noqa: F811
    status, reply = call("POST", "/models/churn/versions/99999999999999999999999/approve", {"environment": "prod"})
    assert (status, reply["error"]) == (400, "invalid_input")
    assert get_bus().services.registry.list_approvals("churn", 1, "prod") == []


# -- Azure -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"\xff\xfe{}", 400, "UTF-8"),
        (DEEP.encode(), 400, "nested"),
        (json.dumps({"version": 1, "reason": "x" * 20_000_000}).encode(), 413, "KiB"),
        (json.dumps({"version": True}).encode(), 400, "version"),
        (json.dumps({"version": 2**63}).encode(), 400, "version"),
        (b"[1, 2]", 400, "object"),
    ],
)
def test_azure_hostile_bodies_get_typed_4xx_and_change_nothing(app, body, status, words):  # noqa: F811
    registered(app)
    got, reply = promote("churn", "dev", body, as_user("alice@contoso.com"))
    assert got == status and reply["error"] in {"invalid_input", "payload_too_large"}, reply
    assert words in reply["message"]
    assert app.registry.get_alias("churn", "dev") is None


@pytest.mark.parametrize(
    "principal",
    [b"[]", b'{"claims": null}', b'{"claims": 7}', b'"text"', b"[" * 5000],
)
def test_azure_a_malformed_client_principal_is_a_400_not_a_500(app, principal):  # noqa: F811
    registered(app)
    headers = {"X-MS-CLIENT-PRINCIPAL": base64.b64encode(principal).decode()}
    status, reply = promote("churn", "dev", {"version": 1}, headers)
    assert (status, reply["error"]) == (400, "invalid_input"), reply
    assert "X-MS-CLIENT-PRINCIPAL" in reply["message"]
    assert app.registry.get_alias("churn", "dev") is None


def test_azure_a_dot_dot_in_a_blob_subject_is_rejected_once_not_retried(app):  # noqa: F811
    """The upload function returns (Event Grid stops) with one typed rejection; before, an untyped error made the
    host retry the event 30 times."""
    from modelpilot.entrypoints.azure.events import upload_command
    from modelpilot.entrypoints.azure.runtime import run_event
    from tests.support.azure_functions import host_event, load_event, user_function

    app.upload_package("churn/v1", auc=0.81)
    event = load_event("eventgrid_blob_created_manifest.json")[0]
    event["subject"] = f"/blobServices/default/containers/{app.container}/blobs/churn/v1/../v1/modelpilot.json"
    event["data"]["url"] = f"https://acct.blob.core.windows.net/{app.container}/churn/v1/../v1/modelpilot.json"
    assert user_function("model_upload")(host_event(event)) is None  # returned: no platform retry
    reply = run_event(host_event(event), "model_upload", lambda env: upload_command(env, container=app.container))
    assert (reply["status"], reply["error"]) == ("failed", "invalid_event")
    assert app.registry.list_models() == []
