"""A fanned-out drift window equals the single pass, on the local backend, through the CLI and the bus.

Two homes hold the same registry, reference and capture window (one copied
from the other before any drift run). ``modelpilot drift run --workers 1`` runs
on one, ``--workers 2`` (a real spawn process pool reading the window in
batches) on the other. Proven here: the reports are the same (every count
exactly, every metric to 1e-12, same severity and drifted features), and so are
the published ``DriftDetected`` events, the monitor status and the gauges. Also:
a batch lost by its worker counts its files as corrupt files, so the policy's
corrupt-share limit still decides. Not proven here: wall-clock speed-up (see
benchmarks/drift_scale.py).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

from modelpilot import telemetry
from modelpilot.bootstrap import bootstrap
from modelpilot.cli import main
from modelpilot.config import Settings
from modelpilot.domain.commands import RunDriftBatch
from modelpilot.service.drift.window import run_partial
from tests.integration.test_drift_batch import T0, capture, register_and_release, rows

pytest_plugins = ["tests.integration.test_drift_batch"]

HEADER = "tenure,charges,calls,plan\n"
END = "2026-03-01T12:00:00Z"


def _fill_window(env) -> None:
    rng = env["rng"]
    for back in range(1, 7):
        for part in range(3):
            body = HEADER + rows(300, rng, charges_shift=20.0 * (back % 2), calls_shift=0.3 * part)
            if part == 1 and back == 2:
                body += "bad,row\n"
            capture(env, "staging", back, body, name=f"part-{part}.csv")
    capture(env, "staging", 3, "\x1f\x8b not really gzip", name="part-9.csv.gz")  # one unreadable file


def _close(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b)), (path, a, b)
    else:
        assert a == b, (path, a, b)


def _run(home: Path, workers: int, capsys) -> dict[str, Any]:
    otel = telemetry.configure_in_memory()
    argv = ["drift", "run", "--model", "churn", "--env", "staging", "--window", "6h", "--end", END]
    assert main([*argv, "--home", str(home), "--workers", str(workers), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["reports"]
    bus = bootstrap(Settings(backend="local", home=str(home)))
    status = bus.services.registry.get_monitor_status("churn", "staging", "drift")
    events = [json.loads(line) for line in (home / "events.jsonl").read_text().splitlines()]
    gauges = sorted(
        (tuple(sorted(a.items())), v)
        for name in ("modelpilot.drift.score", "modelpilot.data_quality.missing_rate")
        for a, v in otel.metric_points(name)
    )
    return {
        "result": result,
        "report": json.loads(Path(result["report_uri"]).read_text()),
        "status": status,
        "drift_events": [e["detail"] for e in events if e["type"] == "DriftDetected"],
        "gauges": gauges,
    }


def _without_home(doc: Any, home: Path) -> Any:
    return json.loads(json.dumps(doc, default=str).replace(str(home), "<home>"))


def test_workers_2_gives_the_single_pass_report_events_status_and_metrics(env, tmp_path, capsys):
    register_and_release(env)
    _fill_window(env)
    twin = tmp_path / "twin"
    shutil.copytree(env["home"], twin)
    one = _run(env["home"], 1, capsys)
    two = _run(twin, 2, capsys)
    report = one["report"]
    assert report["current"]["rows"] == 5400 and report["current"]["corrupt_rows"] == 1
    assert report["current"]["files"] == 19 and report["current"]["corrupt_files"] == 1
    _close(_without_home(one["report"], env["home"]), _without_home(two["report"], twin))
    assert one["result"]["severity"] == two["result"]["severity"] != "none"
    assert one["result"]["drifted_features"] == two["result"]["drifted_features"]
    assert _without_home(one["drift_events"], env["home"]) == _without_home(two["drift_events"], twin)
    assert len(one["drift_events"]) == 1
    s1, s2 = one["status"], two["status"]
    assert (s1.state, s1.version, s1.summary) == (s2.state, s2.version, s2.summary) == (s1.state, 1, s1.summary)
    assert _without_home(s1.details, env["home"]) == _without_home(s2.details, twin)
    assert len(one["gauges"]) == len(two["gauges"]) > 0
    for (attrs1, v1), (attrs2, v2) in zip(one["gauges"], two["gauges"], strict=True):
        assert attrs1 == attrs2 and math.isclose(v1, v2, rel_tol=1e-12, abs_tol=1e-12)


def test_workers_must_be_positive(env, capsys):
    assert main(["drift", "run", "--model", "churn", "--workers", "0", "--home", str(env["home"])]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


class _LosingRunner:
    """Reads every batch in this process but the ones named: a child that failed within the tolerated share."""

    workers = 3

    def __init__(self, svc, lose: set[int]) -> None:
        self.svc, self.lose, self.seen = svc, lose, 0

    def __call__(self, plan, batches):
        self.seen = len(batches)
        return [run_partial(self.svc, plan, b) for b in reversed(batches) if b.index not in self.lose]


def test_a_lost_batch_counts_its_files_as_corrupt(env):
    register_and_release(env)
    _fill_window(env)
    bus = env["bus"]
    runner = _LosingRunner(bus.services, {0})
    bus.services.drift_runner = runner
    cmd = RunDriftBatch(actor="system:drift", model="churn", environment="staging", window_seconds=6 * 3600, end=T0)
    outcome = bus.handle(cmd)
    assert runner.seen > 1
    report = json.loads(Path(outcome.data["reports"][0]["report_uri"]).read_text())
    lost = report["current"]["corrupt_files"] - 1  # the unreadable file is in a later batch
    assert lost >= 1 and report["current"]["files"] == 19
    assert report["current"]["rows"] == 5400 - 300 * lost
    assert any("batch 0 was not read" in e for e in report["current"]["corrupt_examples"])
