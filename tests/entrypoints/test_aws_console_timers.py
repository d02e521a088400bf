"""Console invocations (promote, rollback, drift, SLO, canary functions) and the three timers, on moto."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from modelpilot import bootstrap
from modelpilot.bootstrap import get_bus
from modelpilot.domain.commands import RegisterModel
from modelpilot.service.messagebus import COMMAND_HANDLERS, MessageBus, Outcome
from tests.support.aws import put_policy, upload_package
from tests.support.aws_events import LambdaContext, first_reply_again, handler, handler_stack, load, scheduler_input

promote, rollback = handler("promote"), handler("rollback")
drift_batch, slo_check, canary_tick = handler("drift_batch"), handler("slo_check"), handler("canary_tick")
RECEIVED: list = []


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def record(command, services):
    """Stands in for the drift / SLO handlers: the timer's job is only to send the right command once."""
    RECEIVED.append(command)
    return Outcome("ok", f"{type(command).__name__} received", {"model": command.model})


@pytest.fixture
def recording_bus(aws_stack, monkeypatch):
    RECEIVED.clear()
    handlers = {
        **COMMAND_HANDLERS,
        "RunDriftBatch": f"{__name__}:record",
        "CheckSlos": f"{__name__}:record",
        "AdvanceCanaries": f"{__name__}:record",
    }
    bus = MessageBus(bootstrap.build_services(bootstrap.Settings.from_env()), command_handlers=handlers)
    monkeypatch.setattr(bootstrap, "_bus", bus)
    return bus


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


def test_console_promote_then_rollback(churn):
    assert (
        promote({"action": "promote", "model": "churn", "environment": "prod", "version": 1}, LambdaContext())["status"]
        == "promoted"
    )
    churn.more(2)
    assert (
        promote({"action": "promote", "model": "churn", "environment": "prod", "version": 2}, LambdaContext())["status"]
        == "promoted"
    )
    reply = rollback(
        {"action": "rollback", "model": "churn", "environment": "prod", "reason": "p95 latency"}, LambdaContext()
    )
    assert reply["status"] == "rolled_back" and reply["version"] == 1
    records = get_bus().services.registry.audit_records("churn")
    assert records[-1].actor == "anonymous:console" and records[-1].reason == "p95 latency"


def test_console_actor_is_the_cognito_identity_when_lambda_provides_one(churn):
    context = LambdaContext(
        identity=SimpleNamespace(cognito_identity_id="us-east-1:1234-abcd", cognito_identity_pool_id="pool")
    )
    promote({"action": "promote", "model": "churn", "environment": "prod", "version": 1}, context)
    assert get_bus().services.registry.get_alias("churn", "prod").updated_by == "cognito:us-east-1:1234-abcd"


def test_console_approve_is_refused_lambda_does_not_name_the_caller(churn):
    churn.more(2)
    reply = promote(
        {"action": "approve", "model": "churn", "version": 2, "environment": "prod", "comment": "ok"}, LambdaContext()
    )
    assert (reply["status"], reply["error"], reply["actor"]) == ("failed", "not_authorized", "anonymous:console")
    assert get_bus().services.registry.list_approvals("churn", 2, "prod") == []


def test_async_retry_of_one_invocation_rolls_back_once(churn):
    promote({"action": "promote", "model": "churn", "environment": "prod", "version": 1}, LambdaContext())
    churn.more(2)
    promote({"action": "promote", "model": "churn", "environment": "prod", "version": 2}, LambdaContext())
    context = LambdaContext()  # Lambda keeps the request id when it retries an asynchronous invocation
    payload = {"action": "rollback", "model": "churn", "environment": "prod", "reason": "incident 42"}
    replies = [rollback(payload, context) for _ in range(3)]
    assert first_reply_again(replies)
    history = get_bus().services.registry.alias_history("churn", "prod")
    assert [c.action for c in history] == ["promote", "promote", "rollback"]


@pytest.mark.parametrize(
    ("function", "payload"),
    [
        ("promote", {"action": "rollback", "model": "churn", "environment": "prod", "reason": "x"}),
        ("promote", {"action": "promote", "model": "churn"}),
        ("promote", {"action": "promote", "model": "churn", "environment": "prod", "version": 0}),
        ("rollback", {"action": "rollback", "model": "churn", "environment": "prod"}),
        ("rollback", {"action": "rollback", "model": "churn", "environment": "prod", "reason": "x", "extra": 1}),
        ("rollback", "rollback churn"),
        ("drift_batch", {"action": "slo_check"}),
        ("slo_check", {"hello": "world"}),
        ("drift_batch", {"schedule_arn": "not-an-arn", "scheduled_time": "2026-11-26T04:00:00Z"}),
        ("slo_check", {"schedule_arn": "arn:aws:scheduler:us-east-1:1:schedule/default/x", "scheduled_time": "soon"}),
        ("canary_tick", {"action": "slo_check"}),
        ("canary_tick", {"action": "canary_tick", "model": "churn", "step": 2}),
    ],
)
def test_bad_console_payloads_are_typed_failures(churn, function, payload):
    before = len(get_bus().services.registry.audit_records("churn"))
    reply = handler(function)(payload, LambdaContext())
    assert reply["status"] == "failed" and reply["error"] == "invalid_event", reply
    assert len(get_bus().services.registry.audit_records("churn")) == before


def test_unknown_model_from_console_is_not_retried(churn):
    reply = rollback({"action": "rollback", "model": "ghost", "environment": "prod", "reason": "x"}, LambdaContext())
    assert reply["status"] == "failed" and reply["error"] == "unknown_model"


def test_drift_timer_sends_one_batch_per_scheduled_time(recording_bus):
    first = scheduler_input("modelpilot-drift", at="2026-11-26T04:00:00Z", execution_id="attempt-1")
    retry = scheduler_input("modelpilot-drift", at="2026-11-26T04:00:00Z", execution_id="attempt-2", attempt="2")
    later = scheduler_input("modelpilot-drift", at="2026-11-26T05:00:00Z")
    replies = [drift_batch(e, LambdaContext()) for e in (first, retry, first, later)]
    assert [r["status"] for r in replies] == ["ok"] * 4
    assert len(RECEIVED) == 2  # the retry has a new execution id but the same scheduled time
    assert [c.end.isoformat() for c in RECEIVED] == ["2026-11-26T04:00:00+00:00", "2026-11-26T05:00:00+00:00"]
    assert RECEIVED[0].actor == "system:scheduler" and RECEIVED[0].model is None
    assert RECEIVED[0].trigger.startswith("schedule:arn:aws:scheduler:")


def test_slo_timer_and_rule_schedule_and_console(recording_bus):
    slo_check(scheduler_input("modelpilot-slo"), LambdaContext())
    slo_check(load("eventbridge_scheduled.json"), LambdaContext())
    slo_check(load("eventbridge_scheduled.json"), LambdaContext())
    slo_check({"action": "slo_check", "model": "churn", "environment": "prod"}, LambdaContext())
    assert [type(c).__name__ for c in RECEIVED] == ["CheckSlos"] * 3
    assert (RECEIVED[2].model, RECEIVED[2].environment, RECEIVED[2].actor) == ("churn", "prod", "anonymous:console")


def test_console_drift_payload(recording_bus):
    drift_batch({"action": "drift", "model": "churn", "environment": "prod", "window_seconds": 3600}, LambdaContext())
    [command] = RECEIVED
    assert (command.model, command.environment, command.window_seconds, command.end) == ("churn", "prod", 3600, None)


def test_timers_reach_the_real_drift_and_slo_handlers(churn):
    drift_tick, slo_tick = scheduler_input("modelpilot-drift"), scheduler_input("modelpilot-slo")
    drift, slo = drift_batch(drift_tick, LambdaContext()), slo_check(slo_tick, LambdaContext())
    # the policy monitors nothing yet: the drift batch finds no model to check, the SLO check evaluates none
    assert drift["status"] != "failed" and "monitored" in drift["message"], drift
    assert slo["status"] != "failed" and "0 SLO" in slo["message"], slo
    assert first_reply_again([drift, drift_batch(drift_tick, LambdaContext())])
    assert first_reply_again([slo, slo_check(slo_tick, LambdaContext())])


def test_canary_timer_sends_one_tick_per_scheduled_time_and_the_console_one_per_request(recording_bus):
    first = scheduler_input("modelpilot-canary-tick", at="2026-11-26T04:05:00Z", execution_id="attempt-1")
    retry = scheduler_input("modelpilot-canary-tick", at="2026-11-26T04:05:00Z", execution_id="attempt-2", attempt="2")
    replies = [canary_tick(e, LambdaContext()) for e in (first, retry)]
    canary_tick({"action": "canary_tick", "model": "churn", "environment": "prod"}, LambdaContext())
    assert [r["status"] for r in replies] == ["ok", "ok"] and replies[1]["duplicate"] is True
    assert [type(c).__name__ for c in RECEIVED] == ["AdvanceCanaries"] * 2
    tick, console = RECEIVED
    assert (tick.actor, tick.model, tick.environment) == ("system:scheduler", None, None)
    assert tick.trigger.startswith("schedule:arn:aws:scheduler:") and tick.trigger.endswith(
        "@2026-11-26T04:05:00+00:00"
    )
    assert (console.model, console.environment, console.actor) == ("churn", "prod", "anonymous:console")
