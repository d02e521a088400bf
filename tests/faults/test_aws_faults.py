"""Faults at every AWS call of register, promote, rollback, the drift batch and the SLO check, through the Lambda
handlers, on moto.

Each flow is run once clean to list the calls it makes (``service.Operation``, in
order) and the state it leaves. Then, on a fresh stack each time, call ``i`` of
the flow fails once (throttling, 500, 503, a read timeout or a closed connection;
before the request is sent, or after the service did the work and the reply was
lost) for every ``i``. After the failed attempt the registry (versions, aliases,
alias history, approvals, audit records) equals the state before or the state a
clean run leaves, and ``audit verify``'s check passes; the error is typed and
retryable (the handler raises it so Lambda retries; the API answers 503/409); the
retry, with no fault, leaves exactly the clean run's state: one version, one alias
move, one audit record each.

What these tests cannot show: faults inside a call that botocore retries on its
own (the fault is raised once botocore has given up), two faults in one attempt,
a crash of the process between two calls (see the kill tests), and the published
events: those are checked on their own below (the outbox publishes what a failed call lost), and for the
drift batch and the SLO check after each retry. The Azure clients: ``test_azure_faults.py``.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelpilot import bootstrap
from modelpilot.bootstrap import get_bus
from modelpilot.domain.commands import PromoteModel, RegisterModel
from modelpilot.exceptions import ModelPilotError
from modelpilot.package.builder import write_package
from modelpilot.service.audit import verify_audit
from tests.support.aws import create_stack, put_policy, stack_environment, upload_package
from tests.support.aws_events import LambdaContext, handler, http_request, s3_notification, scheduler_input
from tests.support.faults import AWS_FAULTS, aws_faults, registry_state

upload, api, rollback = handler("model_upload"), handler("operator_api"), handler("rollback")
drift_batch = handler("drift_batch")
#: every invocation here may run for 1 s more, so a claim it leaves expires after 1 s
CLAIM_MS = 1000


def snapshot() -> dict[str, Any]:
    """The registry's state, without times and hashes (which differ between runs)."""
    registry = get_bus().services.registry
    envs = list(get_bus().services.policy.environments)
    state = registry_state(registry, envs)
    artifacts, root = get_bus().services.artifacts, get_bus().services.data_root
    state["<reports>"] = sorted(o.uri.rsplit("/", 1)[-1] for o in artifacts.list(f"{root}/reports"))
    # every stack has its own bucket: compare the state with the bucket's name taken out
    bucket = get_bus().services.data_root.split("/")[2]
    text = json.dumps(state).replace(bucket, "<bucket>")
    # an SLO alert's id (a rollback's trigger) ends with the time of the check that raised it
    normalized: dict[str, Any] = json.loads(re.sub(r"@\d{4}-\d\d-\d\dT[\d:.+]+", "@<time>", text))
    return normalized


def is_prefix(state: dict[str, Any], final: dict[str, Any]) -> bool:
    """True when every model's audit in ``state`` is a prefix of its audit in ``final``.

    With ``audit_ok()`` (the state agrees with its audit) this means ``state`` is the
    before state, the after state, or a state between two of the flow's commits.
    """
    # the drift batch writes a report's HTML, then its JSON (the commit marker): a fault between leaves the HTML
    reports = set(state["<reports>"]) <= set(final["<reports>"])
    return reports and all(
        model in final and final[model]["audit"][: len(rows["audit"])] == rows["audit"]
        for model, rows in state.items()
        if not model.startswith("<")
    )


def audit_ok() -> bool:
    """The check ``modelpilot audit verify`` makes (chains, heads, state agree)."""
    svc = get_bus().services
    return verify_audit(svc.registry, environments=list(svc.policy.environments)).ok


def fresh_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    stack = create_stack(request)
    for name, value in stack_environment(stack).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "MODELPILOT_POLICY", "MODELPILOT_HOME", "POWERTOOLS_IDEMPOTENCY_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    bootstrap.reset()
    put_policy(stack)
    return stack


def add_version(stack: Any, make_package: Any, n: int) -> None:
    key = upload_package(stack, make_package("churn", auc=0.8 + n / 100), f"models/churn/v{n}")
    get_bus().handle(
        RegisterModel(package_uri=f"s3://{stack.bucket}/{key[:-16]}", actor="system:test", auto_promote=True)
    )


def attempt(act: Callable[[], Any]) -> tuple[str, Any]:
    """Run one delivery; return ("done", reply) or ("retry", error) for an error the platform retries."""
    try:
        reply = act()
    except ModelPilotError as exc:
        assert exc.retryable, f"a fault became a permanent error: {exc.to_dict()}"
        return "retry", exc.code
    if "statusCode" in reply:  # the operator API answers; a client retries a 503 or 409
        body = json.loads(reply["body"])
        if reply["statusCode"] in (409, 503):
            return "retry", body.get("error")
        assert reply["statusCode"] == 200, body
        return "done", body
    assert reply.get("status") != "failed", f"a fault became a stored failure: {reply}"
    return "done", reply


def retry_until_done(act: Callable[[], Any], what: Any) -> int:
    """Retry as the platform does until the delivery completes; return how many retries met a held claim.

    A fault that loses the reply of the claim's write leaves the claim in place: retries are
    refused as "in progress" until it expires with the invocation that took it (CLAIM_MS here).
    """
    for waited in range(3):
        outcome, detail = attempt(act)
        if outcome == "done":
            return waited
        time.sleep(CLAIM_MS / 1000 + 0.2)
    raise AssertionError(f"the retries never completed: {what}, last error {detail}")


def run_with_faults(
    flow: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    setup: Callable[[Any], Callable[[], Any]],
    after_retry: Callable[[Any, list[str], int, tuple[str, str]], None] | None = None,
) -> list[str]:
    """Fail each call of the flow once in turn; check all or nothing, then that the retry completes it once.

    Returns the steps whose retries did not end in the clean run's state (the tests expect none).
    ``after_retry(stack, calls, index, fault)`` checks more (the published events) once the retries are done.
    """
    with aws_faults(monkeypatch) as faults:
        act = setup(fresh_stack(request, monkeypatch))
        clean_before = snapshot()
        faults.disarm()
        assert attempt(act)[0] == "done"
        calls = list(faults.calls)
        clean_after = snapshot()
        assert clean_after != clean_before and audit_ok()
        retried = stopped_between = waited = 0
        incomplete: list[str] = []
        for index, name in enumerate(calls):
            fault = AWS_FAULTS[index % len(AWS_FAULTS)]
            stack = fresh_stack(request, monkeypatch)
            act = setup(stack)
            assert snapshot() == clean_before
            faults.arm(index, fault)
            outcome, detail = attempt(act)
            assert faults.injected and faults.injected[-1].index == index, (index, name, faults.calls)
            after_fault = snapshot()
            assert is_prefix(after_fault, clean_after), (index, name, fault, detail, after_fault)
            stopped_between += after_fault not in (clean_before, clean_after)
            assert audit_ok(), (index, name, fault)
            faults.disarm()
            if outcome == "retry":
                retried += 1
                waited += retry_until_done(act, (index, name, fault, detail))
            assert audit_ok()
            if (final := snapshot()) != clean_after:
                incomplete.append(f"{index}:{name}:{fault[0]}:{fault[1]}")
                print(f"\n{index} {name} {fault}: the retry left {final}\n the clean run left {clean_after}")
                continue
            # a further redelivery changes nothing
            attempt(act)
            assert snapshot() == clean_after, (index, name, fault)
            if after_retry is not None:
                after_retry(stack, calls, index, fault)
        print(
            f"\n{flow}: {len(faults.injected)} faults injected over {len(calls)} calls; {retried} retried, "
            f"{stopped_between} stopped between two commits, {waited} retries met a claim until it expired; calls: {calls}"
        )
        assert len(faults.injected) == len(calls)
        return incomplete


def register_flow(make_package: Any) -> Callable[[Any], Callable[[], Any]]:
    """An S3 notification of a new package: register v1, promote it to dev."""
    root = make_package("churn")

    def setup(stack: Any) -> Callable[[], Any]:
        key = upload_package(stack, root, "models/churn/v1")
        event = s3_notification(stack.bucket, key, etag="etag-1", version_id="object-v1")
        return lambda: upload(event, LambdaContext(aws_request_id="upload-1", remaining_ms=CLAIM_MS))

    return setup


def promote_flow(make_package: Any) -> Callable[[Any], Callable[[], Any]]:
    """POST promote v1 to prod with an Idempotency-Key (the client retries with the same key)."""

    def setup(stack: Any) -> Callable[[], Any]:
        add_version(stack, make_package, 1)
        event = http_request("POST", "/models/churn/environments/prod/promote", {"version": 1, "reason": "release"})
        event.setdefault("headers", {})["idempotency-key"] = "promote-key-1"
        return lambda: api(event, LambdaContext(aws_request_id="api-1", remaining_ms=CLAIM_MS))

    return setup


def rollback_flow(make_package: Any) -> Callable[[Any], Callable[[], Any]]:
    """The rollback function invoked asynchronously (a retry keeps the request id): prod v2 -> v1."""

    def setup(stack: Any) -> Callable[[], Any]:
        for n in (1, 2):
            add_version(stack, make_package, n)
            get_bus().handle(PromoteModel(model="churn", environment="prod", version=n, actor="system:test"))
        payload = {"action": "rollback", "model": "churn", "environment": "prod", "reason": "p95 latency"}
        context = LambdaContext(aws_request_id="rollback-1", remaining_ms=CLAIM_MS)
        return lambda: rollback(payload, context)

    return setup


def test_register_is_all_or_nothing_at_every_call(request, monkeypatch, make_package):
    assert run_with_faults("register (upload)", request, monkeypatch, register_flow(make_package)) == []


def test_promote_is_all_or_nothing_at_every_call(request, monkeypatch, make_package):
    assert run_with_faults("promote (operator API)", request, monkeypatch, promote_flow(make_package)) == []


def test_rollback_is_all_or_nothing_at_every_call(request, monkeypatch, make_package):
    assert run_with_faults("rollback (console)", request, monkeypatch, rollback_flow(make_package)) == []


def bus_events(stack: Any) -> list[str]:
    """The detail types on the stack's bus (drained from the queue behind its catch-all rule)."""
    return [e["detail-type"] for e in bus_messages(stack)]


def bus_messages(stack: Any) -> list[dict[str, Any]]:
    """The events on the stack's bus (drained from the queue behind its catch-all rule)."""
    sqs, found = stack.client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"]) for m in batch]
    return found


@pytest.mark.parametrize(
    ("flow", "events"),
    [
        (register_flow, ["ModelRegistered", "ModelPromoted"]),
        (promote_flow, ["ModelPromoted"]),
        (rollback_flow, ["ModelRolledBack"]),
    ],
    ids=["register", "promote", "rollback"],
)
def test_an_event_whose_put_events_fails_once_is_published_once_by_the_retry(
    request, monkeypatch, make_package, flow, events
):
    with aws_faults(monkeypatch) as faults:
        stack = fresh_stack(request, monkeypatch)
        act = flow(make_package)(stack)
        bus_events(stack)  # the set-up's own events
        faults.disarm()
        attempt(act)
        step = faults.calls.index("events.PutEvents")
        stack = fresh_stack(request, monkeypatch)
        act = flow(make_package)(stack)
        bus_events(stack)
        faults.arm(step, ("throttling", "before"))
        if attempt(act)[0] == "retry":
            retry_until_done(act, "PutEvents")
        assert faults.injected
        attempt(act)  # and a late redelivery
        assert sorted(bus_events(stack)) == sorted(events)


DRIFT_POLICY = """\
version: 1
environments: [dev, prod]
models:
  churn:
    drift:
      environments: [prod]
      window: 1h
"""


def drift_flow(make_package: Any, tmp_path: Any) -> Callable[[Any], Callable[[], Any]]:
    """The drift batch (console invocation) over the last hour of prod's captures: a report, a status, an event."""
    rng = random.Random(5)
    reference = tmp_path / "reference.csv"
    reference.write_text("x\n" + "".join(f"{rng.gauss(0, 1) + 5:.4f}\n" for _ in range(400)))
    package = tmp_path / "drift-pkg"
    write_package(
        package,
        files={"model.bin": b"weights", "reference.csv": reference.read_bytes()},
        artifacts=["model.bin"],
        name="churn",
        framework="test",
        metrics={"auc": 0.8},
        features=[{"name": "x", "type": "numeric"}],
        reference_data_uri="reference.csv",
    )
    now = datetime.now(UTC)
    capture = "x\n" + "".join(f"{rng.gauss(2, 1) + 5:.4f}\n" for _ in range(400))

    def setup(stack: Any) -> Callable[[], Any]:
        put_policy(stack, DRIFT_POLICY)
        bootstrap.reset()
        key = upload_package(stack, package, "models/churn/v1")
        get_bus().handle(
            RegisterModel(package_uri=f"s3://{stack.bucket}/{key[:-16]}", actor="system:test", auto_promote=True)
        )
        get_bus().handle(PromoteModel(model="churn", environment="prod", version=1, actor="system:test"))
        hour = (now - timedelta(minutes=5)).strftime("%Y/%m/%d/%H")
        stack.client("s3").put_object(
            Bucket=stack.bucket, Key=f"monitoring/captures/churn/prod/{hour}/part-0.csv", Body=capture.encode()
        )
        payload = {"action": "drift", "model": "churn", "environment": "prod", "window_seconds": 3600}
        context = LambdaContext(aws_request_id="drift-1", remaining_ms=CLAIM_MS)
        return lambda: drift_batch(payload, context)

    return setup


def drift_events_published(stack: Any, calls: list[str], index: int, fault: tuple[str, str]) -> None:
    """``DriftDetected`` went out once; twice (same report id) only when the fault fell after its ``PutEvents``
    reached the bus and before the report's JSON (the commit marker) was stored."""
    drifts = [e["detail"] for e in bus_messages(stack) if e["detail-type"] == "DriftDetected"]
    put = calls.index("events.PutEvents")
    commit = calls.index("s3.PutObject", put)
    doubled = (index == put and fault[1] == "after") or (index == commit and fault[1] == "before")
    assert len(drifts) == (2 if doubled else 1), (index, calls[index], fault, drifts)
    assert len({d["report_id"] for d in drifts}) == 1


def test_drift_batch_is_all_or_nothing_at_every_call(request, monkeypatch, make_package, tmp_path):
    incomplete = run_with_faults(
        "drift batch (console)",
        request,
        monkeypatch,
        drift_flow(make_package, tmp_path),
        after_retry=drift_events_published,
    )
    print(f"drift batch: retries that left an incomplete state: {incomplete}")
    assert incomplete == []


SLO_POLICY = """\
version: 1
environments: [dev, prod]
models:
  churn:
    slos:
      - name: availability
        environment: prod
        objective: 0.99
        sli: {kind: ratio, source: cloudwatch, template: sagemaker_availability, endpoint_name: churn-prod}
    rollback:
      prod: {on_slo_page: true}
"""
slo_check = handler("slo_check")


def slo_flow(make_package: Any) -> Callable[[Any], Callable[[], Any]]:
    """The SLO timer's tick: CloudWatch says prod's v2 failed 40% of its requests, the burn rate pages and prod
    rolls back to v1 (check_slos → SloBurnAlert → rollback, one delivery). A retry is the same tick delivered
    again (Lambda's async retry keeps the request id; the tick keeps its scheduled time)."""

    def setup(stack: Any) -> Callable[[], Any]:
        put_policy(stack, SLO_POLICY)
        bootstrap.reset()
        for n in (1, 2):
            add_version(stack, make_package, n)
            get_bus().handle(PromoteModel(model="churn", environment="prod", version=n, actor="system:test"))
        dims = [{"Name": "EndpointName", "Value": "churn-prod"}, {"Name": "VariantName", "Value": "AllTraffic"}]
        # the tick's time: after the release (the next whole second, waited for), before the check runs
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.05)
        stack.client("cloudwatch").put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {"MetricName": name, "Dimensions": dims, "Value": value, "Timestamp": at - timedelta(minutes=2)}
                for name, value in (("Invocations", 1000.0), ("Invocation5XXErrors", 400.0))
            ],
        )
        tick = scheduler_input("modelpilot-slo", at=at.isoformat().replace("+00:00", "Z"), execution_id="slo-tick-1")
        context = LambdaContext(aws_request_id="slo-1", remaining_ms=CLAIM_MS)
        return lambda: slo_check(tick, context)

    return setup


def slo_events_published(stack: Any, calls: list[str], index: int, fault: tuple[str, str]) -> None:
    """The rollback's ``ModelRolledBack`` went out under one outbox id (once, or again under that id when a
    reply was lost); the burn alert of v2 at least once (a retry checks again and raises it again)."""
    found = bus_messages(stack)
    rolled = [e["detail"] for e in found if e["detail-type"] == "ModelRolledBack"]
    alerts = [e["detail"] for e in found if e["detail-type"] == "SloBurnAlert"]
    where = (index, calls[index], fault, rolled, alerts)
    assert len({r["id"] for r in rolled}) == 1 and [r["to_version"] for r in rolled][:1] == [1], where
    assert alerts and all(a["version"] == 2 for a in alerts), where


def test_slo_check_and_its_rollback_are_all_or_nothing_at_every_call(request, monkeypatch, make_package):
    incomplete = run_with_faults(
        "SLO check (timer)", request, monkeypatch, slo_flow(make_package), after_retry=slo_events_published
    )
    print(f"SLO check: retries that left an incomplete state: {incomplete}")
    assert incomplete == []
