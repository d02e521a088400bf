"""The operator HTTP API and the timers, called as the host calls them, against Azurite."""

from __future__ import annotations

import json

import pytest

from modelpilot.domain.audit import verify_chain
from modelpilot.domain.commands import RegisterModel
from modelpilot.service.messagebus import COMMAND_HANDLERS, MessageBus, Outcome
from modelpilot.testing import FakeClock
from tests.support.azure_functions import AzureApp, entra_id, host_timer, http_request, principal_header, user_function


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path)
    yield app
    app.close()


def as_user(name):
    return {"X-MS-CLIENT-PRINCIPAL": principal_header(name), "X-MS-CLIENT-PRINCIPAL-NAME": name}


def call(name, method, route, params, body=None, headers=None):
    response = user_function(name)(http_request(method, route, params, body=body, headers=headers))
    return response.status_code, json.loads(response.get_body())


def promote(model, env, body=None, headers=None):
    route = f"models/{model}/environments/{env}/promote"
    return call("api_promote", "POST", route, {"model": model, "env": env}, body or {}, headers)


def approve(version, headers, env="prod"):
    route = f"models/churn/versions/{version}/approve"
    return call(
        "api_approve",
        "POST",
        route,
        {"model": "churn", "version": str(version)},
        {"environment": env, "comment": "ok"},
        headers,
    )


def rollback(env, body, headers=None, model="churn"):
    route = f"models/{model}/environments/{env}/rollback"
    return call("api_rollback", "POST", route, {"model": model, "env": env}, body, headers)


ALICE, BOB, CAROL = entra_id("alice@contoso.com"), entra_id("bob@contoso.com"), entra_id("carol@contoso.com")


def registered(app, n=1):
    for i in range(1, n + 1):
        app.upload_package(f"churn/v{i}", auc=0.8 + i / 100)
        uri = f"az://{app.container}/churn/v{i}"
        app.bus.handle(RegisterModel(package_uri=uri, actor=ALICE))


def test_promote_approve_promote_rollback_status_history(app):
    registered(app, 2)
    alice, bob = as_user("alice@contoso.com"), as_user("bob@contoso.com")
    for version in (1, 2):
        for env in ("dev", "staging"):
            status, body = promote("churn", env, {"version": version}, alice)
            assert (status, body["status"]) == (200, "promoted")
        status, body = promote("churn", "prod", {"version": version}, alice)
        assert (status, body["status"]) == (409, "blocked")
        assert "approval" in body["message"]
        status, body = approve(version, bob)
        assert (status, body["status"], body["approver"]) == (200, "approved", BOB)
        status, body = promote("churn", "prod", {"version": version}, alice)
        assert (status, body["status"], body["revision"]) == (200, "promoted", version)

    status, body = rollback("prod", {"reason": "error spike"}, as_user("carol@contoso.com"))
    assert (status, body["status"], body["version"]) == (200, "rolled_back", 1)

    status, body = call("api_model_status", "GET", "models/churn/status", {"model": "churn"})
    prod = next(r for r in body["status"] if r["environment"] == "prod")
    assert (status, prod["version"], prod["revision"], prod["updated_by"]) == (200, 1, 3, CAROL)

    route = "models/churn/environments/prod/history"
    status, body = call("api_history", "GET", route, {"model": "churn", "env": "prod"})
    assert status == 200
    assert [(h["action"], h["to_version"], h["actor"]) for h in body["history"]] == [
        ("promote", 1, ALICE),
        ("promote", 2, ALICE),
        ("rollback", 1, CAROL),
    ]
    assert verify_chain("churn", app.registry.audit_records("churn")).ok


def test_status_of_every_model_and_of_an_unknown_one(app):
    registered(app)
    status, body = call("api_status", "GET", "status", {})
    assert status == 200 and {(r["model"], r["environment"]) for r in body["status"]} == {
        ("churn", "dev"),
        ("churn", "staging"),
        ("churn", "prod"),
    }
    status, body = call("api_model_status", "GET", "models/nope/status", {"model": "nope"})
    assert (status, body["error"]) == (404, "unknown_model")


def test_registrant_cannot_approve_own_version(app):
    registered(app)
    status, body = approve(1, as_user("alice@contoso.com"))
    assert (status, body["error"]) == (403, "not_authorized")
    assert app.registry.list_approvals("churn", 1, "prod") == []


def test_without_a_principal_the_actor_is_an_anonymous_key_holder(app):
    registered(app)
    assert promote("churn", "dev")[0] == 200
    assert app.registry.alias_history("churn", "dev")[0].actor == "anonymous:function-key"


def test_principal_headers_are_ignored_without_app_service_authentication(app, monkeypatch):
    registered(app)
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED")
    status, body = approve(1, as_user("bob@contoso.com"))  # forged by a key holder: not bob
    assert (status, body["error"], body["actor"]) == (403, "not_authorized", "anonymous:function-key")
    assert app.registry.list_approvals("churn", 1, "prod") == []


def test_idempotency_key_makes_a_client_retry_harmless(app):
    registered(app, 2)
    headers = {**as_user("alice@contoso.com"), "Idempotency-Key": "req-42"}
    results = [promote("churn", "dev", {"version": 1}, headers) for _ in range(3)]
    assert [r[1]["status"] for r in results] == ["promoted", "unchanged", "unchanged"]
    assert len(app.registry.alias_history("churn", "dev")) == 1
    assert [r.action for r in app.registry.audit_records("churn")].count("promote") == 1


@pytest.mark.parametrize(
    "model, env, body, expected",
    [
        ("churn", "prod", {}, (400, "invalid_input")),
        ("churn", "qa", {"reason": "x"}, (400, "unknown_environment")),
        ("nope", "prod", {"reason": "x"}, (404, "unknown_model")),
        ("churn", "prod", b"{not json", (400, "invalid_input")),
    ],
)
def test_bad_requests_get_typed_errors_and_change_nothing(app, model, env, body, expected):
    registered(app)
    before = app.registry.audit_records("churn")
    status, reply = rollback(env, body, as_user("carol@contoso.com"), model=model)
    assert (status, reply["error"]) == expected
    assert reply["message"]
    assert app.registry.audit_records("churn") == before


# -- timers ------------------------------------------------------------------------------
SEEN: list = []


def fake_run_drift_batch(cmd, svc):
    SEEN.append(cmd)
    return Outcome("checked", "drift batch ran", {"models": 0})


def fake_check_slos(cmd, svc):
    SEEN.append(cmd)
    return Outcome("checked", "slo check ran", {"slos": 0})


def fake_advance_canaries(cmd, svc):
    SEEN.append(cmd)
    return Outcome("checked", "canary tick ran", {"canaries": 0})


@pytest.fixture
def timer_bus(app, monkeypatch):
    """The app's services with the drift, SLO and canary handlers replaced (their engines live elsewhere)."""
    from modelpilot import bootstrap

    SEEN.clear()
    app.bus.services.clock = FakeClock()
    handlers = {
        **COMMAND_HANDLERS,
        "RunDriftBatch": f"{__name__}:fake_run_drift_batch",
        "CheckSlos": f"{__name__}:fake_check_slos",
        "AdvanceCanaries": f"{__name__}:fake_advance_canaries",
    }
    monkeypatch.setattr(bootstrap, "_bus", MessageBus(app.bus.services, command_handlers=handlers))
    return app


@pytest.mark.parametrize(
    "function, command",
    [("drift_batch", "RunDriftBatch"), ("slo_check", "CheckSlos"), ("canary_tick", "AdvanceCanaries")],
)
def test_timer_sends_its_command_once_per_occurrence(timer_bus, function, command):
    user_function(function)(host_timer())
    user_function(function)(host_timer(past_due=True))  # the same occurrence run again (late or by hand)
    assert [type(c).__name__ for c in SEEN] == [command]
    (cmd,) = SEEN
    kind = function.split("_")[0]
    assert cmd.actor == "system:timer" and cmd.trigger == f"timer:{kind}:2026-01-01T00:00"
    timer_bus.bus.services.clock.advance(3600)
    user_function(function)(host_timer())
    assert len(SEEN) == 2


def test_timer_schedules_come_from_app_settings():
    from tests.support.azure_functions import indexed_functions

    functions = indexed_functions()
    schedules = {name: functions[name].get_trigger().schedule for name in ("drift_batch", "slo_check", "canary_tick")}
    assert schedules == {
        "drift_batch": "%DRIFT_SCHEDULE%",
        "slo_check": "%SLO_SCHEDULE%",
        "canary_tick": "%CANARY_SCHEDULE%",
    }
    http = [f for f in functions.values() if f.get_trigger().get_binding_name() == "httpTrigger"]
    assert http and all(f.get_trigger().auth_level.name == "FUNCTION" for f in http)


VIEWER_POLICY = f"""\
environments: [dev, staging, prod]
roles:
  - {{role: admin, members: ["{ALICE}"]}}
  - {{role: viewer, members: ["{entra_id("vera@contoso.com")}"]}}
"""


@pytest.fixture
def viewer_app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path, VIEWER_POLICY)
    yield app
    app.close()


READS = [
    ("api_status", "status", {}),
    ("api_model_status", "models/churn/status", {"model": "churn"}),
    ("api_history", "models/churn/environments/prod/history", {"model": "churn", "env": "prod"}),
    ("api_incident", "models/churn/environments/prod/incident", {"model": "churn", "env": "prod"}),
]


def read(name, route, params, headers=None):
    response = user_function(name)(http_request("GET", route, params, headers=headers))
    return response.status_code, json.loads(response.get_body())


def denied_reads(app):
    return [(r.actor, r.evidence.get("attempted")) for r in app.registry.audit_records("churn") if r.action == "deny"]


def test_reads_need_the_view_role_when_the_policy_declares_roles(viewer_app):
    registered(viewer_app)
    promote("churn", "dev", {"version": 1}, as_user("alice@contoso.com"))
    for name, route, params in READS[:3]:
        status, body = read(name, route, params, as_user("vera@contoso.com"))
        assert status == 200, (name, body)
    status, body = read(*READS[1], as_user("vera@contoso.com"))
    assert {r["environment"]: r["version"] for r in body["status"]} == {"dev": 1, "staging": None, "prod": None}
    for name, route, params in READS:
        status, body = read(name, route, params, as_user("mallory@contoso.com"))
        assert (status, body["error"]) == (403, "not_authorized"), name
    # a caller with only the function key is no one the roles name either
    assert read(*READS[1])[0] == 403
    mallory, key = entra_id("mallory@contoso.com"), "anonymous:function-key"
    # each denied read of the model is audited (the fleet-wide status names no model)
    assert denied_reads(viewer_app) == [(mallory, "view")] * 3 + [(key, "view")]
    assert verify_chain("churn", viewer_app.registry.audit_records("churn")).ok


def test_reads_are_open_when_the_policy_declares_no_roles(app):
    registered(app)
    for name, route, params in READS[:3]:
        assert read(name, route, params, as_user("mallory@contoso.com"))[0] == 200, name
    assert denied_reads(app) == []
