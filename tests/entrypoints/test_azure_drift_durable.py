"""The drift fan-out on Durable Functions, replayed the way the Durable runtime replays an orchestrator.

:class:`Replayer` plays the runtime: it calls the registered ``drift_window``
orchestrator (the SDK's own ``Orchestrator`` and replay executor, through the
function ``function_app`` indexes) with the orchestration history as JSON; takes
the actions it returns; appends ``TaskScheduled`` for each new one, runs the
registered activity function with the JSON-encoded input and appends its
``TaskCompleted``; marks the history played and replays the orchestrator from the
start, until it is done. Every replay must return the earlier actions unchanged
(the runtime fails a non-deterministic orchestrator).

Proven: the fan-out runs one ``drift_partial`` per batch in waves of
``max_concurrency``, the fan-in merges them into the single pass's report
(counts exactly, metrics to 1e-12) and publishes ``DriftDetected`` once, a
re-delivered merge publishes nothing, replays are deterministic, and a bad input
fails the orchestration with the field named. Not proven: the Durable
extension itself (task hub storage, activity retries with timers, real
scheduling), which needs the Functions host.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelpilot.bootstrap import bootstrap
from modelpilot.config import Settings
from modelpilot.drift.builder import build_reference
from modelpilot.entrypoints.azure.drift_durable import orchestration_input
from modelpilot.service.drift.fanout import Batch, WindowPlan, plan_batches
from modelpilot.service.drift.window import merge_window, run_partial
from tests.support.azure_functions import indexed_functions

STAMP = "2026-01-01T00:00:00.000000Z"


def _event(kind: int, event_id: int, **fields: Any) -> dict[str, Any]:
    return {"EventType": kind, "EventId": event_id, "IsPlayed": False, "Timestamp": STAMP, **fields}


class Replayer:
    """The Durable runtime's replay loop over the registered orchestrator and activities."""

    ORCHESTRATOR_STARTED, EXECUTION_STARTED, TASK_SCHEDULED, TASK_COMPLETED = 12, 0, 4, 5

    def __init__(self, orchestrator: str, payload: Any) -> None:
        functions = indexed_functions()
        self.handle = functions[orchestrator].get_user_function()
        self.activities = {name: functions[name].get_user_function() for name in ("drift_partial", "drift_merge")}
        self.history = [
            _event(self.ORCHESTRATOR_STARTED, -1),
            _event(self.EXECUTION_STARTED, -1, Input=json.dumps(payload), Name=orchestrator, Version=""),
        ]
        self.actions: list[dict[str, Any]] = []
        self.episodes: list[list[str]] = []
        self.replays = 0

    def replay(self) -> dict[str, Any]:
        """Run the orchestrator once over the history; check it is deterministic; return its state."""
        context = {
            "history": self.history,
            "instanceId": "drift-1",
            "isReplaying": self.replays > 0,
            "parentInstanceId": None,
            "input": self.history[1]["Input"],
        }
        self.replays += 1
        state: dict[str, Any] = json.loads(self.handle(json.dumps(context)))
        actions = [a for group in state.get("actions", []) for a in group]
        assert actions[: len(self.actions)] == self.actions, "the orchestrator is not deterministic on replay"
        return state

    def run(self) -> dict[str, Any]:
        """Replay until the orchestration is done; return its final state."""
        while True:
            state = self.replay()
            if state["isDone"] or state.get("error"):
                return state
            actions = [a for group in state["actions"] for a in group]
            new = actions[len(self.actions) :]
            assert new, "the orchestrator waits for nothing"
            for event in self.history:
                event["IsPlayed"] = True
            self.history.append(_event(self.ORCHESTRATOR_STARTED, -1))
            self.episodes.append([a["functionName"] for a in new])
            for action in new:
                event_id = len([e for e in self.history if e["EventType"] == self.TASK_SCHEDULED])
                self.history.append(_event(self.TASK_SCHEDULED, event_id, Name=action["functionName"]))
                given = action["input"]
                payload = json.loads(given) if isinstance(given, str) else given
                result = self.activities[action["functionName"]](json.loads(json.dumps(payload)))
                self.history.append(
                    _event(self.TASK_COMPLETED, -1, TaskScheduledId=event_id, Result=json.dumps(result))
                )
            self.actions = actions


@pytest.fixture
def window(tmp_path, monkeypatch):
    home = tmp_path / "home"
    bus = bootstrap(Settings(backend="local", home=str(home)))
    # the module, not the package attribute of the same name (the blueprint object)
    monkeypatch.setattr(importlib.import_module("functions.azure.drift_durable"), "get_bus", lambda: bus)
    svc = bus.services
    rng = np.random.default_rng(11)
    reference = build_reference(
        {"x": rng.normal(0, 1, 4000), "c": np.asarray(rng.choice(["a", "b"], 4000), dtype=object)}, bins=200
    )
    ref = Path(svc.data_root) / "profiles" / "m" / "v1" / "reference-profile.json"
    ref.parent.mkdir(parents=True)
    ref.write_bytes(reference.to_json())
    folder = Path(svc.data_root) / "captures" / "m" / "e"
    folder.mkdir(parents=True)
    files = []
    for i in range(7):
        x = rng.normal(1.0 if i % 2 else 0.0, 1, 500)
        body = "x,c\n" + "".join(f"{v:.6f},{'ab'[j % 2] if j % 50 else 'new'}\n" for j, v in enumerate(x))
        path = folder / f"part-{i}.csv"
        path.write_text(body + ("only,three,fields\n" if i == 3 else ""))
        files.append((str(path), path.stat().st_size))
    plan = WindowPlan("m", "e", 1, "m-e-durable", "s", "e", None, str(ref), tuple(files))
    return {
        "bus": bus,
        "svc": svc,
        "plan": plan,
        "batches": plan_batches(plan, max_bytes=10**9, max_files=2),
        "tmp": tmp_path,
    }


def _close(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            _close(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    else:
        assert a == b


def test_the_replayed_orchestration_fans_out_fans_in_and_reports_the_single_pass(window):
    plan, batches = window["plan"], window["batches"]
    assert len(batches) == 4
    replayer = Replayer("drift_window", orchestration_input(plan, batches, max_concurrency=3))
    state = replayer.run()
    assert state["isDone"] and not state.get("error")
    assert replayer.episodes == [["drift_partial"] * 3, ["drift_partial"], ["drift_merge"]]
    assert replayer.replays == 4
    outcome = json.loads(state["output"]) if isinstance(state["output"], str) else state["output"]
    (report,) = outcome["reports"]
    assert outcome["status"] == "drift" and report["severity"] != "none"
    events = [json.loads(line) for line in (window["tmp"] / "home" / "events.jsonl").read_text().splitlines()]
    assert [e["type"] for e in events] == ["DriftDetected"]
    fanned = json.loads(Path(report["report_uri"]).read_text())
    assert fanned["current"]["rows"] == 3500 and fanned["current"]["corrupt_rows"] == 1
    single_svc = bootstrap(Settings(backend="local", home=str(window["tmp"] / "single"))).services
    whole = Batch(0, tuple(u for u, _ in plan.files), plan.total_bytes, "all")
    single = merge_window(single_svc, plan, [whole], [run_partial(single_svc, plan, whole)])
    _close(fanned["features"], single["report"].data["features"])
    # the runtime replays the finished history again (a duplicate delivery): same output, no activity runs
    assert replayer.replay()["output"] == state["output"]
    # the merge activity delivered twice: the stored report, no second event
    last_merge = [e for e in replayer.history if e.get("Name") == "drift_merge"]
    assert len(last_merge) == 1
    merge = indexed_functions()["drift_merge"].get_user_function()
    again = merge(json.loads(json.dumps(_merge_input(replayer))))
    assert again["status"] == "unchanged" and "events" not in again
    assert len((window["tmp"] / "home" / "events.jsonl").read_text().splitlines()) == 1


def _merge_input(replayer: Replayer) -> dict[str, Any]:
    action = next(a for a in replayer.actions if a["functionName"] == "drift_merge")
    given = action["input"]
    return json.loads(given) if isinstance(given, str) else given


def test_a_bad_input_fails_the_orchestration_naming_the_field(window):
    # the SDK reports a failed orchestration to the runtime as an exception carrying its state
    with pytest.raises(Exception, match=r"drift orchestration input: field batches") as failed:
        Replayer("drift_window", {"plan": window["plan"].to_dict(), "batches": []}).run()
    assert '"isDone": false, "actions": []' in str(failed.value)  # nothing was scheduled


@pytest.mark.parametrize("setting", ["", "true"])
def test_the_durable_functions_are_registered_only_where_the_app_setting_turns_them_on(setting):
    """Off by default: the Durable SDK is not imported, so no function's cold start pays for it."""
    import os
    import subprocess
    import sys

    probe = (
        "import json, sys, function_app; "
        "print(json.dumps([sorted(f.get_function_name() for f in function_app.app.get_functions()), "
        "'azure.durable_functions' in sys.modules]))"
    )
    env = {**os.environ, "MODELPILOT_AZURE_DURABLE_DRIFT": setting}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True, check=True)
    names, durable_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert ({"drift_window", "drift_partial", "drift_merge"} <= set(names)) is bool(setting)
    assert durable_loaded is bool(setting)
    assert "model_upload" in names
