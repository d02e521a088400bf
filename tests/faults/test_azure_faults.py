"""Faults at every Azure call of register, promote, rollback, the drift batch and the SLO check, through the
function app's functions, on Azurite (Blob and Table Storage), a local Event Grid topic and Azure Monitor's
REST answers.

As for AWS (``test_aws_faults.py``): each flow is run once clean to list the calls it makes (``blob.PUT``,
``table.POST $batch``, ``eventgrid.POST``, ``monitor.GET`` …, in order) and the state it leaves. Then, on a
fresh app each time, call ``i`` fails once for every ``i``: 429 or 503 with ``Retry-After``, 500 (a real
error response, the request never sent), a timeout or a connection reset (before the request is sent, or
after the service did the work and the reply was lost). The fault comes through an azure-core transport around
the real one (``tests/support/faults.py``); the clients are built with ``retry_total=0``, so the adapter meets
the fault as it would once the SDK's own retries are exhausted.

After the failed attempt the registry (versions, aliases, alias history, approvals, monitor status, audit
records, the outbox watermark) equals the state before, the state after, or a state between two of the flow's
commits (``audit verify``'s check passes); the error is typed and retryable (the function raises it so Event
Grid or the timer delivers again; the operator API answers 503 or 409); the retry, the same delivery again,
leaves exactly the clean run's state, and every outbox event reached the topic under one id.

What these tests cannot show: faults inside the SDK's own retries, two faults in one attempt, a crash between
two calls, the real Event Grid and Functions host retry schedules.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.adapters.azure import idempotency as azure_idempotency
from modelpilot.adapters.azure.eventgrid import EventGridPublisher
from modelpilot.domain.commands import PromoteModel, RegisterModel
from modelpilot.exceptions import ModelPilotError
from modelpilot.package.builder import write_package
from modelpilot.service.audit import verify_audit
from modelpilot.service.dispatch import LOCK_SECONDS
from modelpilot.service.outbox import OUTBOX_EVENTS
from modelpilot.testing import FakeClock
from tests.support.azure_functions import (
    AzureApp,
    entra_id,
    host_event,
    host_timer,
    http_request,
    principal_header,
    user_function,
)
from tests.support.azure_transport import StaticCredential, canned_transport
from tests.support.eventgrid import EventGridTopic
from tests.support.faults import AZURE_FAULTS, FaultTransport, azure_faults, registry_state

#: the time the flows run at (a frozen clock): set-up a minute before, the delivery a few seconds after
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ALICE = "alice@contoso.com"

POLICY = """\
environments: [dev, prod]
models:
  churn:
    drift:
      environments: [prod]
      window: 1h
"""


class Run:
    """One fresh function app (its own tables and container) with its Event Grid topic."""

    def __init__(self, request: Any, monkeypatch: Any, folder: Path, faults: Any, topic: EventGridTopic, policy: str):
        folder.mkdir(parents=True)
        self.faults = faults
        self.app = AzureApp(request, monkeypatch, folder, policy_text=policy)
        self.clock = self.app.bus.services.clock = FakeClock(T0 - timedelta(minutes=1))
        topic.events.clear()
        # the basic-topic client the public EventGridPublisherClient wraps (the wrapper drops transport and
        # retry settings): the same requests, through the fault transport, with no SDK retries
        from azure.core.credentials import AzureKeyCredential
        from azure.eventgrid._legacy import EventGridPublisherClient as BasicTopicClient

        client = BasicTopicClient(
            topic.endpoint, AzureKeyCredential(topic.key), transport=faults.transport("eventgrid"), retry_total=0
        )
        self.app.bus.services.publisher = EventGridPublisher(client)
        self.topic = topic

    def delivered_at(self, seconds: float = 5) -> None:
        """Move the clock past the set-up: the delivery happens a few seconds after ``T0``."""
        self.clock.advance((T0 - self.clock()).total_seconds() + seconds)


def snapshot(run: Run) -> dict[str, Any]:
    """The registry's state, without times and hashes."""
    services = run.app.bus.services
    registry, envs = services.registry, list(services.policy.environments)
    state = registry_state(registry, envs)
    reports = services.artifacts.list(f"{services.data_root}/reports")
    state["<reports>"] = sorted(o.uri.rsplit("/", 1)[-1] for o in reports)
    text = json.dumps(state).replace(run.app.container, "<container>")
    # an SLO alert's id ends with its check's time; an upload's key with its blob's ETag (new in every app)
    text = re.sub(r"@\d{4}-\d\d-\d\dT[\d:.+]+", "@<time>", text)
    normalized: dict[str, Any] = json.loads(re.sub(r'@\\"0x[0-9A-F]+\\"', "@<etag>", text))
    return normalized


def is_prefix(state: dict[str, Any], final: dict[str, Any]) -> bool:
    """Every model's audit in ``state`` is a prefix of its audit in ``final``; no report or event is ahead."""
    return set(state["<reports>"]) <= set(final["<reports>"]) and all(
        model in final
        and final[model]["audit"][: len(rows["audit"])] == rows["audit"]
        and (rows["watermark"] or 0) <= (final[model]["watermark"] or 0)
        for model, rows in state.items()
        if not model.startswith("<")
    )


def audit_ok(run: Run) -> bool:
    svc = run.app.bus.services
    return verify_audit(svc.registry, environments=list(svc.policy.environments)).ok


def outbox_ids(run: Run) -> dict[str, str]:
    """The outbox events that reached the topic: CloudEvents id → type (a duplicate keeps its id)."""
    return {e["id"]: e["type"] for e in run.topic.events if e["type"].removeprefix("ModelPilot.") in OUTBOX_EVENTS}


class ClaimClock:
    """``time`` for the idempotency store: real time plus an offset, so a test can let a held claim expire."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset


def attempt(act: Callable[[], Any]) -> tuple[str, Any]:
    """Run one delivery; ("done", reply) or ("retry", error) for what the platform retries."""
    try:
        reply = act()
    except ModelPilotError as exc:
        assert exc.retryable, f"a fault became a permanent error: {exc.to_dict()}"
        return "retry", exc.code
    if reply is not None and hasattr(reply, "status_code"):  # the operator API: a client retries 503 and 409
        body = json.loads(reply.get_body())
        if reply.status_code in (409, 503):
            return "retry", body.get("error")
        assert reply.status_code == 200, body
        return "done", body
    return "done", reply


def retry_until_done(act: Callable[[], Any], claims: ClaimClock, what: Any) -> int:
    """Deliver again until done; a claim left held by a lost reply is let expire (its 900 s cap) once."""
    for waited in range(3):
        outcome, detail = attempt(act)
        if outcome == "done":
            return waited
        if detail == "concurrency_conflict":
            claims.offset += LOCK_SECONDS + 1
    raise AssertionError(f"the retries never completed: {what}, last error {detail}")


def run_with_faults(
    flow: str,
    request: Any,
    monkeypatch: Any,
    tmp_path: Path,
    setup: Callable[[Run], Callable[[], Any]],
    *,
    policy: str = POLICY,
    events: Callable[[Run, dict[str, str], int, tuple[str, str]], None] | None = None,
) -> list[str]:
    """Fail each call of the flow once in turn; check all or nothing, and that the retry completes it once."""
    claims = ClaimClock()
    monkeypatch.setattr(azure_idempotency, "time", claims)
    topic = EventGridTopic()
    runs = iter(range(10_000))
    try:
        with azure_faults(monkeypatch) as faults:
            run = Run(request, monkeypatch, tmp_path / f"run{next(runs)}", faults, topic, policy)
            act = setup(run)
            clean_before = snapshot(run)
            faults.disarm()
            assert attempt(act)[0] == "done"
            calls = list(faults.calls)
            clean_after, clean_events = snapshot(run), outbox_ids(run)
            assert clean_after != clean_before and audit_ok(run)
            retried = stopped_between = waited = 0
            incomplete: list[str] = []
            for index, name in enumerate(calls):
                fault = AZURE_FAULTS[index % len(AZURE_FAULTS)]
                run.app.close()
                run = Run(request, monkeypatch, tmp_path / f"run{next(runs)}", faults, topic, policy)
                act = setup(run)
                assert snapshot(run) == clean_before
                faults.arm(index, fault)
                outcome, detail = attempt(act)
                assert faults.injected and faults.injected[-1].index == index, (index, name, faults.calls)
                after_fault = snapshot(run)
                assert is_prefix(after_fault, clean_after), (index, name, fault, detail, after_fault)
                stopped_between += after_fault not in (clean_before, clean_after)
                assert audit_ok(run), (index, name, fault)
                faults.disarm()
                if outcome == "retry":
                    retried += 1
                    waited += retry_until_done(act, claims, (index, name, fault, detail))
                assert audit_ok(run)
                if (final := snapshot(run)) != clean_after:
                    incomplete.append(f"{index}:{name}:{fault[0]}:{fault[1]}")
                    print(f"\n{index} {name} {fault}: the retry left {final}\n the clean run left {clean_after}")
                    continue
                attempt(act)  # a further redelivery changes nothing
                assert snapshot(run) == clean_after, (index, name, fault)
                # every outbox event reached the topic, each under its one id (a lost reply may send it twice)
                assert outbox_ids(run) == clean_events, (index, name, fault, run.topic.events)
                if events is not None:
                    events(run, clean_events, index, fault)
            run.app.close()
    finally:
        topic.stop()
    print(
        f"\n{flow}: {len(faults.injected)} faults injected over {len(calls)} calls; {retried} retried, "
        f"{stopped_between} stopped between two commits, {waited} retries met a claim and let it expire; "
        f"calls: {calls}"
    )
    assert len(faults.injected) == len(calls)
    return incomplete


# -- the flows ------------------------------------------------------------------------------------


def as_user(name: str) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": principal_header(name), "X-MS-CLIENT-PRINCIPAL-NAME": name}


def released(run: Run, versions: int, envs: tuple[str, ...] = ("dev",)) -> None:
    for n in range(1, versions + 1):
        run.app.upload_package(f"churn/v{n}", auc=0.8 + n / 100)
        run.app.bus.handle(RegisterModel(package_uri=f"az://{run.app.container}/churn/v{n}", actor=entra_id(ALICE)))
        for env in envs:
            run.app.bus.handle(PromoteModel("churn", env, actor=entra_id(ALICE), version=n))


def register_flow(run: Run) -> Callable[[], Any]:
    """Event Grid's BlobCreated for a new package: register v1 and promote it to dev."""
    event = host_event(run.app.blob_event("churn/v1", run.app.upload_package("churn/v1")))
    run.delivered_at()
    return lambda: user_function("model_upload")(event)


def promote_flow(run: Run) -> Callable[[], Any]:
    """POST promote v1 to prod with an Idempotency-Key (the client retries with the same key)."""
    released(run, 1)
    run.delivered_at()
    headers = {**as_user(ALICE), "Idempotency-Key": "promote-key-1"}
    request = http_request(
        "POST",
        "models/churn/environments/prod/promote",
        {"model": "churn", "env": "prod"},
        body={"version": 1, "reason": "release"},
        headers=headers,
    )
    return lambda: user_function("api_promote")(request)


def rollback_flow(run: Run) -> Callable[[], Any]:
    """POST rollback of prod v2 → v1 with an Idempotency-Key."""
    released(run, 2, ("dev", "prod"))
    run.delivered_at()
    headers = {**as_user(ALICE), "Idempotency-Key": "rollback-key-1"}
    request = http_request(
        "POST",
        "models/churn/environments/prod/rollback",
        {"model": "churn", "env": "prod"},
        body={"reason": "p95 latency"},
        headers=headers,
    )
    return lambda: user_function("api_rollback")(request)


def drift_flow(run: Run) -> Callable[[], Any]:
    """The drift timer over prod's last hour of captures: a report (HTML, JSON), a status, ``DriftDetected``."""
    rng = np.random.default_rng(5)
    folder = run.app.tmp_path / "drift-pkg"
    reference = "x\n" + "".join(f"{v:.4f}\n" for v in rng.normal(5, 1, 400))
    write_package(
        folder,
        files={"model.bin": b"weights", "reference.csv": reference.encode()},
        artifacts=["model.bin"],
        name="churn",
        framework="test",
        metrics={"auc": 0.8},
        features=[{"name": "x", "type": "numeric"}],
        reference_data_uri="reference.csv",
    )
    run.app.upload_folder(folder, "churn/v1")
    run.app.bus.handle(RegisterModel(package_uri=f"az://{run.app.container}/churn/v1", actor=entra_id(ALICE)))
    for env in ("dev", "prod"):
        run.app.bus.handle(PromoteModel("churn", env, actor=entra_id(ALICE), version=1))
    hour = T0 - timedelta(minutes=30)
    capture = "x\n" + "".join(f"{v:.4f}\n" for v in rng.normal(7, 1, 400))
    run.app.blob.get_container_client(run.app.container).upload_blob(
        f"monitoring/captures/churn/prod/{hour:%Y/%m/%d/%H}/part-0.csv", capture.encode()
    )
    run.delivered_at()
    return lambda: user_function("drift_batch")(host_timer())


APPI = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/modelpilot/providers/"
    "microsoft.insights/components/appi-modelpilot"
)
SLO_POLICY = f"""\
environments: [dev, prod]
defaults:
  slos:
    - name: availability
      environment: prod
      objective: 0.995
      window: 30d
      sli:
        kind: ratio
        source: azure_monitor
        total: {{query: "{APPI}", metric_name: requests/count, dimensions: {{cloud/roleName: $model-$environment}}}}
        bad: {{query: "{APPI}", metric_name: requests/failed, dimensions: {{cloud/roleName: $model-$environment}}}}
  rollback:
    prod: {{on_slo_page: true, cooldown: 1h}}
"""


def slo_flow(run: Run) -> Callable[[], Any]:
    """The SLO timer: Azure Monitor says prod fails 20% of its requests, the burn rate pages, prod rolls back
    (check_slos → SloBurnAlert → rollback, one delivery)."""
    from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource
    from tests.integration.azure.test_azure_slo_chain import metrics_answer

    released(run, 2, ("dev", "prod"))
    inner, _ = canned_transport(metrics_answer(20))
    transport = FaultTransport(run.faults, "monitor", inner=inner)
    source = AzureMonitorMetricsSource(StaticCredential(), transport=transport, retries=0)
    run.app.bus.services.metrics_sources["azure_monitor"] = source
    run.delivered_at()
    return lambda: user_function("slo_check")(host_timer())


# -- the tests ------------------------------------------------------------------------------------


def test_register_is_all_or_nothing_at_every_call(request, monkeypatch, tmp_path):
    assert run_with_faults("register (upload)", request, monkeypatch, tmp_path, register_flow) == []


def test_promote_is_all_or_nothing_at_every_call(request, monkeypatch, tmp_path):
    assert run_with_faults("promote (operator API)", request, monkeypatch, tmp_path, promote_flow) == []


def test_rollback_is_all_or_nothing_at_every_call(request, monkeypatch, tmp_path):
    assert run_with_faults("rollback (operator API)", request, monkeypatch, tmp_path, rollback_flow) == []


def drift_published(run: Run, _clean: dict[str, str], index: int, fault: tuple[str, str]) -> None:
    drifts = [e for e in run.topic.events if e["type"] == "ModelPilot.DriftDetected"]
    assert drifts and len({e["data"]["report_id"] for e in drifts}) == 1, (index, fault, drifts)


def test_drift_batch_is_all_or_nothing_at_every_call(request, monkeypatch, tmp_path):
    incomplete = run_with_faults(
        "drift batch (timer)", request, monkeypatch, tmp_path, drift_flow, events=drift_published
    )
    assert incomplete == []


def test_slo_check_and_its_rollback_are_all_or_nothing_at_every_call(request, monkeypatch, tmp_path):
    incomplete = run_with_faults("SLO check (timer)", request, monkeypatch, tmp_path, slo_flow, policy=SLO_POLICY)
    assert incomplete == []
