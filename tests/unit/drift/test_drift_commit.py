"""The drift batch's report is all or nothing over the fakes: a failure at any write leaves a window the retry
completes, and a completed window (its JSON, written last) is never left without its HTML, status or event.

The same ``merge_window`` ends the single pass (``RunDriftBatch``: the local backend, the AWS and Azure timers)
and the fan-in (``MergeDriftWindow``: Step Functions, Durable Functions), so these cover every runner and cloud;
``tests/faults/test_aws_faults.py`` drives the same through the Lambda handler on moto.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from modelpilot.domain.commands import MergeDriftWindow
from modelpilot.drift.builder import build_reference
from modelpilot.drift.io.readers import data_files
from modelpilot.exceptions import TransientError
from modelpilot.service.drift.fanout import WindowPlan, plan_batches
from modelpilot.service.drift.window import existing_result, run_partial, store_partial
from modelpilot.service.messagebus import MessageBus
from modelpilot.testing import InMemoryArtifactStore, InMemoryRegistry, RecordingPublisher, fake_services

ROOT = "mem://data"
RID = "m-e-20260101T060000-abc"
JSON, HTML = f"{ROOT}/reports/m/e/{RID}.json", f"{ROOT}/reports/m/e/{RID}.html"


class Failing:
    """Fails one named step once: ``before`` it takes effect, or ``after`` (the effect stays, the caller hears an
    error, as when a reply is lost)."""

    def __init__(self) -> None:
        self.step: tuple[str, str] | None = None
        self.seen: list[str] = []

    def around(self, name: str, act: Any) -> Any:
        self.seen.append(name)
        if self.step == (name, "before"):
            self.step = None
            raise TransientError(f"injected failure before {name}")
        result = act()
        if self.step == (name, "after"):
            self.step = None
            raise TransientError(f"injected failure after {name}")
        return result


class Artifacts(InMemoryArtifactStore):
    def __init__(self, failing: Failing) -> None:
        super().__init__()
        self.failing = failing

    def write_bytes(
        self, uri: str, data: bytes, *, content_type: str = "application/octet-stream", write_once: bool = False
    ) -> str:
        if "/reports/" not in uri:
            return super().write_bytes(uri, data, content_type=content_type, write_once=write_once)
        step = "write " + uri.rsplit(".", 1)[-1]
        return str(
            self.failing.around(
                step, lambda: super(Artifacts, self).write_bytes(uri, data, content_type=content_type, write_once=True)
            )
        )


class Registry(InMemoryRegistry):
    def __init__(self, failing: Failing) -> None:
        super().__init__()
        self.failing = failing

    def put_monitor_status(self, status: Any) -> None:
        self.failing.around("put status", lambda: super(Registry, self).put_monitor_status(status))


class Publisher(RecordingPublisher):
    def __init__(self, failing: Failing) -> None:
        super().__init__()
        self.failing = failing

    def publish(self, events: Any, *, traceparent: str | None = None) -> None:
        self.failing.around("publish", lambda: super(Publisher, self).publish(events, traceparent=traceparent))


def window() -> tuple[Failing, Any, MergeDriftWindow]:
    failing = Failing()
    svc = fake_services(artifacts=Artifacts(failing), registry=Registry(failing), publisher=Publisher(failing))
    rng = np.random.default_rng(3)
    reference = build_reference({"x": rng.normal(0, 1, 5000)}, bins=100)
    ref_uri = svc.artifacts.write_bytes(f"{ROOT}/profiles/m/v1/reference-profile.json", reference.to_json())
    for i in range(4):
        body = "x\n" + "".join(f"{v:.6f}\n" for v in rng.normal(1.5, 1, 400))
        svc.artifacts.write_bytes(f"{ROOT}/captures/m/e/2026/01/01/0{i}/part-{i}.csv", body.encode())
    files = data_files(svc.artifacts.list(f"{ROOT}/captures/m/e"))
    plan = WindowPlan(
        "m",
        "e",
        1,
        RID,
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T06:00:00+00:00",
        None,
        ref_uri,
        tuple((o.uri, o.size) for o in files),
    )
    batches = plan_batches(plan, max_bytes=10_000)
    partials = [store_partial(svc, plan, b, run_partial(svc, plan, b)) for b in batches]
    command = MergeDriftWindow(
        actor="system:drift",
        plan=plan.to_dict(),
        batches=tuple(b.to_dict() for b in batches),
        partials=tuple(partials),
    )
    return failing, svc, command


def state(svc: Any) -> dict[str, Any]:
    status = svc.registry.get_monitor_status("m", "e", "drift")
    return {
        "json": JSON in svc.artifacts.objects,
        "html": HTML in svc.artifacts.objects,
        "status": status.details["report_id"] if status else None,
        "events": [(e.name, e.report_id) for e in svc.publisher.events],
    }


def clean_run() -> tuple[list[str], dict[str, Any]]:
    failing, svc, command = window()
    outcome = MessageBus(svc, react=False).handle(command)
    assert outcome.status == "drift"
    return failing.seen, state(svc)


def test_a_clean_merge_writes_the_html_the_status_and_the_event_before_the_report_json():
    steps, done = clean_run()
    assert steps == ["write html", "put status", "publish", "write json"]
    assert done == {"json": True, "html": True, "status": RID, "events": [("DriftDetected", RID)]}


STEPS = [
    (name, phase) for name in ("write html", "put status", "publish", "write json") for phase in ("before", "after")
]


@pytest.mark.parametrize("step", STEPS, ids=[f"{n.replace(' ', '-')}-{p}" for n, p in STEPS])
def test_a_failure_at_any_step_leaves_a_window_the_retry_completes_once(step):
    _, done = clean_run()
    failing, svc, command = window()
    bus = MessageBus(svc, react=False)
    failing.step = step
    with pytest.raises(TransientError):
        bus.handle(command)
    after_failure = state(svc)
    if after_failure["json"]:  # committed: nothing may be missing
        assert after_failure == done
        assert existing_result(svc, ("m", "e", RID)) is not None
    else:
        assert existing_result(svc, ("m", "e", RID)) is None  # the retry checks the window again
    retried = bus.handle(command)
    final = state(svc)
    assert {k: v for k, v in final.items() if k != "events"} == {"json": True, "html": True, "status": RID}
    # the event goes out once; twice under the same report id only when the failure fell after the publish and
    # before the commit (the bus cannot tell a lost reply from an unsent event)
    doubled = step in (("publish", "after"), ("write json", "before"))
    assert final["events"] == [("DriftDetected", RID)] * (2 if doubled else 1)
    # the retry is "drift" when it completed the window, "unchanged" when the failed attempt had committed it
    assert retried.status == ("unchanged" if after_failure["json"] else "drift")
    # and a further delivery changes nothing and publishes nothing
    again = bus.handle(command)
    assert again.status == "unchanged" and not again.events and state(svc) == final
