"""The drift batch end to end on the local backend: register, capture, run, report, event, status, gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from modelpilot import telemetry
from modelpilot.bootstrap import bootstrap
from modelpilot.cli import main
from modelpilot.config import Settings
from modelpilot.domain.commands import PromoteModel, RegisterModel, RunDriftBatch
from modelpilot.exceptions import DataError, UnknownModel
from modelpilot.package.builder import write_package
from modelpilot.testing import FakeClock

POLICY = """\
version: 1
environments: [dev, staging, prod]
defaults:
  environments:
    prod:
      require_no_drift_alert: true
models:
  churn:
    drift:
      environments: [staging, prod]
      window: 6h
      max_corrupt_share: 0.2
  fraud:
    drift:
      environments: [dev]
"""
FEATURES = [
    {"name": "tenure", "type": "numeric", "minimum": 0},
    {"name": "charges", "type": "numeric"},
    {"name": "calls", "type": "numeric", "minimum": 0},
    {"name": "plan", "type": "categorical", "allowed_values": ["basic", "pro", "max"]},
]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rows(n: int, rng: np.random.Generator, *, charges_shift: float = 0.0, calls_shift: float = 0.0) -> str:
    tenure = rng.gamma(2.0, 12.0, n)
    charges = rng.normal(70 + charges_shift, 20, n)
    calls = rng.poisson(1.5 + calls_shift, n)
    plan = rng.choice(["basic", "pro", "max"], n, p=[0.5, 0.3, 0.2])
    return "".join(f"{t:.3f},{c:.3f},{k},{p}\n" for t, c, k, p in zip(tenure, charges, calls, plan, strict=True))


@pytest.fixture
def env(tmp_path):
    otel = telemetry.configure_in_memory()
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    clock = FakeClock(T0)
    bus = bootstrap(Settings(backend="local", home=str(home)), clock=clock)
    rng = np.random.default_rng(42)
    package = tmp_path / "pkg"
    write_package(
        package,
        files={"model.bin": b"weights", "reference.csv": ("tenure,charges,calls,plan\n" + rows(3000, rng)).encode()},
        artifacts=["model.bin"],
        name="churn",
        framework="test",
        metrics={"auc": 0.8},
        features=FEATURES,
        reference_data_uri="reference.csv",
    )
    return {
        "home": home,
        "bus": bus,
        "clock": clock,
        "rng": rng,
        "package": package,
        "otel": otel,
        "data": Path(bus.services.data_root),
    }


def capture(env, environment: str, hours_back: int, body: str, name: str = "part-0.csv") -> Path:
    hour = (env["clock"]() - timedelta(hours=hours_back)).replace(minute=0, second=0, microsecond=0)
    folder = env["data"] / "captures" / "churn" / environment / hour.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(body)
    return folder / name


def register_and_release(env) -> None:
    bus = env["bus"]
    outcome = bus.handle(RegisterModel(package_uri=str(env["package"]), actor="alice"))
    assert outcome.follow_ups and outcome.follow_ups[0].status == "built"
    for target in ("dev", "staging"):
        assert (
            bus.handle(PromoteModel(model="churn", environment=target, actor="alice", version=1)).status == "promoted"
        )


def events(env) -> list[dict]:
    path = env["home"] / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_registration_builds_the_reference_profile(env):
    register_and_release(env)
    profile = json.loads((env["data"] / "profiles" / "churn" / "v1" / "reference-profile.json").read_text())
    assert profile["format"] == "modelpilot.drift.profile" and profile["rows"] == 3000
    assert [f["name"] for f in profile["features"]] == ["tenure", "charges", "calls", "plan"]


def test_drift_batch_end_to_end(env):
    register_and_release(env)
    bus, rng = env["bus"], env["rng"]
    header = "tenure,charges,calls,plan\n"
    for back in range(1, 7):
        capture(
            env,
            "staging",
            back,
            header + rows(800, rng, charges_shift=25.0, calls_shift=1.5) + ("oops,1\n" if back == 1 else ""),
        )
    capture(env, "staging", 30, "garbage outside the window\n" * 50)  # not in the 6h window: never read
    outcome = bus.handle(
        RunDriftBatch(actor="system:drift", model="churn", environment="staging", window_seconds=6 * 3600)
    )
    assert outcome.status == "drift"
    (result,) = outcome.data["reports"]
    assert sorted(result["drifted_features"]) == ["calls", "charges"]
    assert result["severity"] == "critical" and result["version"] == 1  # 2 of 4 features: share 0.5
    report = json.loads(Path(result["report_uri"]).read_text())
    assert report["current"]["rows"] == 4800 and report["current"]["corrupt_rows"] == 1
    assert report["window"] == {"start": (T0 - timedelta(hours=6)).isoformat(), "end": T0.isoformat()}
    for item in report["features"]:
        assert item["n_reference"] == 3000 and item["n_current"] == 4800
    html = Path(result["html_uri"]).read_text()
    assert "<svg" in html and "http" not in html
    # event, notification, monitor status
    published = [e for e in events(env) if e["type"] == "DriftDetected"]
    assert len(published) == 1 and published[0]["detail"]["report_id"] == result["report_id"]
    assert "DriftDetected" in (env["home"] / "notifications.jsonl").read_text()
    status = bus.services.registry.get_monitor_status("churn", "staging", "drift")
    assert status.state == "alert" and status.version == 1
    assert status.details["report_id"] == result["report_id"]
    # metrics
    points = env["otel"].metric_points("modelpilot.drift.score")
    assert any(a.get("feature") == "charges" and a.get("method") == "wasserstein_norm" and v > 0.5 for a, v in points)
    assert env["otel"].metric_points("modelpilot.data_quality.missing_rate")
    # the promotion gate reads it
    blocked = bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=1))
    assert blocked.status == "blocked"
    assert "no_drift_alert" in [g["gate"] for g in blocked.data["gate_report"]["gates"] if g["status"] == "failed"]
    # re-running the same window changes nothing and publishes nothing
    again = bus.handle(
        RunDriftBatch(actor="system:drift", model="churn", environment="staging", window_seconds=6 * 3600)
    )
    assert again.status == "unchanged" and not again.events
    assert again.data["reports"][0]["report_id"] == result["report_id"]
    assert len([e for e in events(env) if e["type"] == "DriftDetected"]) == 1
    # a later healthy window clears the alert and the gate passes
    env["clock"].advance(6 * 3600)
    for back in range(1, 7):
        capture(env, "staging", back, header + rows(800, rng))
    healthy = bus.handle(
        RunDriftBatch(actor="system:drift", model="churn", environment="staging", window_seconds=6 * 3600)
    )
    assert healthy.status == "ok" and healthy.data["reports"][0]["severity"] == "none"
    assert bus.services.registry.get_monitor_status("churn", "staging", "drift").state == "ok"
    assert bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=1)).status == "promoted"


def test_fleet_batch_checks_monitored_environments_with_a_live_version(env):
    register_and_release(env)
    capture(env, "staging", 1, "tenure,charges,calls,plan\n" + rows(500, env["rng"]))
    outcome = env["bus"].handle(RunDriftBatch(actor="system:drift", window_seconds=6 * 3600))
    assert [(r["model"], r["environment"]) for r in outcome.data["reports"]] == [("churn", "staging")]
    with pytest.raises(UnknownModel):
        env["bus"].handle(RunDriftBatch(actor="system:drift", model="nope"))


def test_too_many_corrupt_records_fail_the_batch_and_write_nothing(env):
    register_and_release(env)
    capture(env, "staging", 1, "tenure,charges,calls,plan\n" + rows(50, env["rng"]) + "bad,row\n" * 30)
    with pytest.raises(DataError, match="corrupt"):
        env["bus"].handle(
            RunDriftBatch(actor="system:drift", model="churn", environment="staging", window_seconds=6 * 3600)
        )
    assert not (env["data"] / "reports").exists()
    assert env["bus"].services.registry.get_monitor_status("churn", "staging", "drift") is None


def test_bad_reference_data_does_not_fail_the_registration(env, tmp_path):
    package = tmp_path / "bad"
    write_package(
        package,
        files={"model.bin": b"w2", "reference.csv": b"tenure,charges\n1\n2\n3\n"},
        artifacts=["model.bin"],
        name="churn",
        framework="test",
        metrics={"auc": 0.8},
        features=FEATURES,
        reference_data_uri="reference.csv",
    )
    outcome = env["bus"].handle(RegisterModel(package_uri=str(package), actor="alice"))
    assert outcome.status == "registered"
    (follow,) = outcome.follow_ups
    assert follow.status == "profile_failed" and "reference" in follow.message


def test_cli_run_report_and_profile(env, capsys, tmp_path, monkeypatch):
    register_and_release(env)
    data = tmp_path / "adhoc"
    data.mkdir()
    (data / "w.csv").write_text("tenure,charges,calls,plan\n" + rows(600, env["rng"], charges_shift=40))
    home = str(env["home"])
    assert (
        main(
            [
                "drift",
                "run",
                "--model",
                "churn",
                "--env",
                "staging",
                "--data",
                str(data),
                "--home",
                home,
                "--end",
                "2026-03-01T12:00:00Z",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    (result,) = out["reports"]
    assert "charges" in result["drifted_features"]
    assert main(["drift", "report", result["report_id"], "--home", home]) == 0
    assert capsys.readouterr().out.strip() == result["html_uri"]
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    assert main(["drift", "report", result["report_id"], "--open", "--home", home]) == 0
    assert opened == [Path(result["html_uri"]).resolve().as_uri()]
    capsys.readouterr()
    assert main(["drift", "report", "missing-report", "--home", home]) == 4
    target = tmp_path / "profile.json"
    assert main(["drift", "profile", str(env["package"] / "reference.csv"), "--out", str(target)]) == 0
    assert json.loads(target.read_text())["rows"] == 3000
    assert main(["drift", "profile", "--model", "churn", "--version", "1", "--home", home]) == 0
    assert main(["drift", "run", "--model", "churn", "--env", "staging", "--window", "soon", "--home", home]) == 2


def test_fleet_batch_records_a_failing_target_and_goes_on(env, tmp_path):
    register_and_release(env)
    capture(env, "staging", 1, "tenure,charges,calls,plan\n" + rows(500, env["rng"]))
    fraud = tmp_path / "fraud"
    write_package(
        fraud,
        files={"model.bin": b"f"},
        artifacts=["model.bin"],
        name="fraud",
        framework="test",
        metrics={"auc": 0.7},
        features=FEATURES,
    )  # no reference data: it cannot be checked
    env["bus"].handle(RegisterModel(package_uri=str(fraud), actor="alice", auto_promote=True))
    outcome = env["bus"].handle(RunDriftBatch(actor="system:drift", window_seconds=6 * 3600))
    by_model = {r["model"]: r for r in outcome.data["reports"]}
    assert by_model["fraud"]["status"] == "failed" and "no reference data" in by_model["fraud"]["error"]["message"]
    assert by_model["churn"]["status"] in {"ok", "drift"}, by_model["churn"]
    assert outcome.status in {"partial", "drift"} and by_model["churn"]["report_id"]
    with pytest.raises(Exception, match="no reference data"):
        env["bus"].handle(RunDriftBatch(actor="system:drift", model="fraud", window_seconds=6 * 3600))


def test_fleet_batch_raises_a_transient_failure_after_the_other_targets_so_the_retry_checks_it(env, tmp_path):
    """A throttled or unavailable store is not a verdict on a window: the fleet run reports the other targets,
    then raises, so the timer's retry (same key) checks the failed window; the reported ones answer "unchanged"."""
    from modelpilot.exceptions import TransientError

    register_and_release(env)
    bus = env["bus"]
    assert bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=1)).status == "promoted"
    capture(env, "staging", 1, "tenure,charges,calls,plan\n" + rows(500, env["rng"]))
    capture(env, "prod", 1, "tenure,charges,calls,plan\n" + rows(500, env["rng"]))
    artifacts = bus.services.artifacts
    list_objects = artifacts.list
    outage = {"left": 1}

    def flaky_list(prefix):
        if "/captures/churn/prod/" in prefix + "/" and outage["left"]:
            outage["left"] -= 1
            raise TransientError("the store is throttling")
        return list_objects(prefix)

    artifacts.list = flaky_list
    with pytest.raises(TransientError, match="throttling"):
        bus.handle(RunDriftBatch(actor="system:drift", window_seconds=6 * 3600))
    reports = sorted(p.name for p in (env["data"] / "reports" / "churn").rglob("*.json"))
    assert len(reports) == 1  # staging was reported
    retry = bus.handle(RunDriftBatch(actor="system:drift", window_seconds=6 * 3600))
    by_env = {r["environment"]: r["status"] for r in retry.data["reports"] if r["model"] == "churn"}
    assert by_env["staging"] == "unchanged" and by_env["prod"] in {"ok", "drift"}
