"""Who the Azure operator API says acted: the Entra ID object id, never a display name; against Azurite."""

from __future__ import annotations

import base64
import json

import pytest

from modelpilot.domain.commands import RegisterModel
from modelpilot.entrypoints.azure.http import KEY_ACTOR, actor_from_headers
from modelpilot.exceptions import InvalidInput, NotAuthorized
from tests.support.azure_functions import AzureApp, entra_id, http_request, principal_header, user_function

POLICY = """\
version: 1
environments: [dev, prod]
operators: ["entra:3f1d2c4b-0000-4000-8000-00000000000a"]
defaults:
  environments:
    prod: {approvals: 1}
"""
OPERATOR = "3f1d2c4b-0000-4000-8000-00000000000a"


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path, policy_text=POLICY)
    app.upload_package("churn/v1", auc=0.81)
    app.bus.handle(RegisterModel(package_uri=f"az://{app.container}/churn/v1", actor="system:eventgrid"))
    yield app
    app.close()


def encoded(value) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def call(name, route, params, body, headers):
    response = user_function(name)(http_request("POST", route, params, body=body, headers=headers))
    return response.status_code, json.loads(response.get_body())


def promote(headers):
    route = "models/churn/environments/dev/promote"
    return call("api_promote", route, {"model": "churn", "env": "dev"}, {"version": 1}, headers)


def approve(headers):
    route = "models/churn/versions/1/approve"
    return call("api_approve", route, {"model": "churn", "version": "1"}, {"environment": "prod"}, headers)


def test_the_actor_is_the_object_id_not_the_display_name():
    one = principal_header("Alice Smith", oid="3F1D2C4B-0000-4000-8000-000000000001")
    renamed = principal_header("alice@contoso.com", oid="3f1d2c4b-0000-4000-8000-000000000001")
    assert actor_from_headers({"X-MS-CLIENT-PRINCIPAL": one}) == "entra:3f1d2c4b-0000-4000-8000-000000000001"
    assert actor_from_headers({"X-MS-CLIENT-PRINCIPAL": renamed}) == actor_from_headers({"X-MS-CLIENT-PRINCIPAL": one})
    assert actor_from_headers({"X-MS-CLIENT-PRINCIPAL-ID": "3f1d2c4b-0000-4000-8000-000000000002"}) == (
        "entra:3f1d2c4b-0000-4000-8000-000000000002"
    )


def test_a_principal_named_system_ops_gets_no_operator_privilege(app):
    status, body = promote({"X-MS-CLIENT-PRINCIPAL": principal_header("system:ops")})
    assert (status, body["error"]) == (403, "not_authorized")
    assert body["actor"] == entra_id("system:ops") and not body["actor"].startswith("system:")
    assert app.registry.get_alias("churn", "dev") is None
    assert app.registry.audit_records("churn")[-1].action == "deny"
    # the operator is named by object id, whatever its display name
    status, body = promote({"X-MS-CLIENT-PRINCIPAL": principal_header("Ops Team", oid=OPERATOR)})
    assert (status, body["status"]) == (200, "promoted")


@pytest.mark.parametrize("principal", [[], {"claims": None}, {"claims": "x"}, "text", 7])
def test_a_malformed_principal_is_a_400_not_a_500(app, principal):
    status, body = approve({"X-MS-CLIENT-PRINCIPAL": encoded(principal)})
    assert (status, body["error"]) == (400, "invalid_input")
    assert app.registry.list_approvals("churn", 1, "prod") == []


@pytest.mark.parametrize(
    "claims",
    [
        [{"typ": "name", "val": "bob@contoso.com"}],  # another provider: a name, no object id
        [{"typ": "oid", "val": "system:ops"}],
        [{"typ": "oid", "val": 12}],
    ],
)
def test_a_principal_without_an_object_id_is_refused(app, claims):
    status, body = approve({"X-MS-CLIENT-PRINCIPAL": encoded({"auth_typ": "aad", "claims": claims})})
    assert (status, body["error"]) == (403, "not_authorized")
    assert app.registry.list_approvals("churn", 1, "prod") == []


def test_a_function_key_holder_is_recorded_as_anonymous_and_cannot_approve(app):
    status, body = approve({})
    assert (status, body["error"], body["actor"]) == (403, "not_authorized", KEY_ACTOR)
    assert app.registry.list_approvals("churn", 1, "prod") == []
    denial = app.registry.audit_records("churn")[-1]
    assert (denial.action, denial.actor) == ("deny", KEY_ACTOR)


def test_two_sign_ins_of_one_object_id_are_one_approver():
    first = principal_header("bob@contoso.com", oid="3f1d2c4b-0000-4000-8000-0000000000b0")
    second = principal_header("Bob (admin)", oid="3F1D2C4B-0000-4000-8000-0000000000B0")
    assert actor_from_headers({"X-MS-CLIENT-PRINCIPAL": first}) == actor_from_headers({"X-MS-CLIENT-PRINCIPAL": second})


def test_header_errors_are_typed():
    with pytest.raises(InvalidInput):
        actor_from_headers({"X-MS-CLIENT-PRINCIPAL": "%%%"})
    with pytest.raises(NotAuthorized):
        actor_from_headers({"X-MS-CLIENT-PRINCIPAL-ID": "not-a-guid"})
