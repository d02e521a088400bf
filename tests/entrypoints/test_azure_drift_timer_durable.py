"""The Azure drift timer starts the Durable orchestration for a large window, once, and reads a small one inline.

The registered ``drift_batch`` function (Durable fan-out on: its Durable client binding) is called
as the worker calls it: with the binding's JSON, from which the SDK builds its own
``DurableOrchestrationClient``. That client's two calls to the Durable extension, ``get_status``
and ``start_new``, are faked (a dictionary of instances); everything else is the real code: the
rich-client wrapper, the starter handing its calls back to the invocation's event loop, the drift
batch on the local backend. The started input is then run by the replay harness of
test_azure_drift_durable.py (the registered orchestrator and activities) and reports ``DriftDetected``.

Not proven: the Durable extension's HTTP API and its ``overridableExistingInstanceStates`` refusal,
which need the Functions host.
"""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from typing import Any

import pytest
from azure.durable_functions import DurableOrchestrationClient
from azure.durable_functions.models.DurableOrchestrationStatus import DurableOrchestrationStatus

from modelpilot.adapters.azure.durable import DurableFanOutStarter
from modelpilot.bootstrap import bootstrap
from modelpilot.config import Settings
from modelpilot.exceptions import TransientError
from modelpilot.service.drift.window import execution_name, plan_window
from tests.entrypoints.test_azure_drift_durable import Replayer
from tests.integration.test_drift_batch import capture, events, register_and_release, rows
from tests.support.azure_functions import host_timer, user_function

pytest_plugins = ["tests.integration.test_drift_batch"]
HEADER = "tenure,charges,calls,plan\n"


class FakeDurable:
    """The Durable extension behind the SDK client: instances by id; ``twin`` starts one first (a racing firing)."""

    def __init__(self) -> None:
        self.instances: dict[str, Any] = {}
        self.starts: list[str] = []
        self.twin = False
        self.refuse = False

    async def get_status(self, instance_id: str, *args: Any, **kwargs: Any) -> DurableOrchestrationStatus:
        if instance_id not in self.instances:
            return DurableOrchestrationStatus.from_json({})  # what a 404 gives
        return DurableOrchestrationStatus.from_json({"instanceId": instance_id, "runtimeStatus": "Running"})

    async def start_new(self, name: str, instance_id: str | None = None, client_input: Any = None) -> str:
        assert name == "drift_window" and instance_id
        self.starts.append(instance_id)
        if self.twin:
            self.instances[instance_id] = {"by": "twin"}
            raise Exception("An Orchestration instance with the status Pending already exists.")
        if self.refuse:
            raise Exception("The task hub is unavailable")
        self.instances[instance_id] = json.loads(json.dumps(client_input))
        return instance_id


@pytest.fixture
def durable(env, monkeypatch):
    fake = FakeDurable()
    monkeypatch.setattr(DurableOrchestrationClient, "get_status", fake.get_status)
    monkeypatch.setattr(DurableOrchestrationClient, "start_new", fake.start_new)
    register_and_release(env)
    for back in range(1, 7):
        for part in range(2):
            capture(env, "staging", back, HEADER + rows(300, env["rng"], charges_shift=25.0), name=f"part-{part}.csv")
    return fake


def _bus(env, monkeypatch, min_bytes: int):
    bus = bootstrap(
        Settings(backend="local", home=str(env["home"])),
        clock=env["clock"],
        drift_fanout=DurableFanOutStarter(min_bytes=min_bytes),
    )
    for module in ("functions.azure.timers", "functions.azure.drift_durable", "modelpilot.entrypoints.azure.runtime"):
        monkeypatch.setattr(importlib.import_module(module), "get_bus", lambda: bus)
    return bus


def _window_bytes(env) -> int:
    return sum(p.stat().st_size for p in (env["data"] / "captures" / "churn" / "staging").rglob("*.csv"))


def test_a_window_above_the_threshold_starts_one_orchestration_named_after_it(env, durable, monkeypatch):
    bus = _bus(env, monkeypatch, min_bytes=_window_bytes(env) // 4)
    env["clock"].advance(60)
    user_function("drift_batch")(host_timer())
    (instance,) = durable.instances
    version = bus.services.registry.get_version("churn", 1)
    day = 24 * 3600  # the timer's RunDriftBatch window
    plan = plan_window(bus.services, version, "staging", end=env["clock"](), window_seconds=day, data_uri=None)
    assert instance == execution_name(plan) and durable.starts == [instance]
    started = durable.instances[instance]
    assert len(started["batches"]) >= 4 and started["plan"]["report_id"] == plan.report_id
    assert sum(len(b["files"]) for b in started["batches"]) == 12
    assert not [e for e in events(env) if e["type"] == "DriftDetected"]  # the orchestration's merge reports

    env["clock"].advance(20 * 60)  # a later firing (another minute, past the timer's key) in the same window
    user_function("drift_batch")(host_timer(past_due=True))
    assert durable.starts == [instance]  # found by its id: not started again

    state = Replayer("drift_window", started).run()
    assert state["isDone"] and not state.get("error")
    assert [e["type"] for e in events(env)].count("DriftDetected") == 1
    env["clock"].advance(60)
    user_function("drift_batch")(host_timer())  # the window has its report: nothing starts, nothing is published
    assert durable.starts == [instance] and [e["type"] for e in events(env)].count("DriftDetected") == 1


def test_a_window_at_or_below_the_threshold_is_read_inline(env, durable, monkeypatch):
    _bus(env, monkeypatch, min_bytes=_window_bytes(env))
    env["clock"].advance(60)
    user_function("drift_batch")(host_timer())
    assert durable.starts == [] and [e["type"] for e in events(env)].count("DriftDetected") == 1


def test_a_twin_firing_that_started_it_first_counts_as_started_once(env, durable, monkeypatch):
    _bus(env, monkeypatch, min_bytes=_window_bytes(env) // 4)
    durable.twin = True
    env["clock"].advance(60)
    user_function("drift_batch")(host_timer())  # start refused, the instance found: unchanged, no error
    assert len(durable.starts) == 1 and list(durable.instances.values()) == [{"by": "twin"}]
    assert not [e for e in events(env) if e["type"] == "DriftDetected"]


def test_a_refused_start_is_a_transient_error_and_the_window_stays_unreported(env, durable, monkeypatch):
    bus = _bus(env, monkeypatch, min_bytes=_window_bytes(env) // 4)
    durable.refuse = True
    starter = bus.services.drift_fanout
    client = DurableOrchestrationClient(_binding())
    with pytest.raises(TransientError, match="could not start drift_window"), starter.bound(client):
        starter.start("drift-x", {"plan": {}, "batches": []})
    assert durable.instances == {}


def test_outside_a_timer_invocation_the_starter_is_not_ready_and_windows_are_read_inline(env, durable, monkeypatch):
    bus = _bus(env, monkeypatch, min_bytes=1)
    assert not bus.services.drift_fanout.ready()
    with pytest.raises(TransientError, match="no Durable client"):
        bus.services.drift_fanout.start("drift-x", {})
    from modelpilot.domain.commands import RunDriftBatch

    env["clock"].advance(timedelta(minutes=1).total_seconds())
    bus.handle(RunDriftBatch(actor="alice", model="churn", environment="staging", window_seconds=6 * 3600))
    assert durable.starts == [] and [e["type"] for e in events(env)].count("DriftDetected") == 1


def _binding() -> str:
    from tests.support.azure_functions import durable_client_binding

    return durable_client_binding()


def test_the_host_and_the_bicep_carry_the_settings_the_starter_relies_on():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    host = json.loads((root / "host.json").read_text())
    # a start racing a running instance of the same id fails instead of replacing it
    assert host["extensions"]["durableTask"]["overridableExistingInstanceStates"] == "NonRunningStates"
    bicep = (root / "infra" / "azure" / "main.bicep").read_text()
    assert "{ name: 'MODELPILOT_AZURE_DURABLE_DRIFT', value: string(durableDrift) }" in bicep
    assert "{ name: 'MODELPILOT_DRIFT_FANOUT_BYTES', value: string(driftFanOutBytes) }" in bicep
