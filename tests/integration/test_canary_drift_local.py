"""A canary's drift metric on the local backend: the candidate's own captured traffic against its reference profile.

Capture files are SageMaker data-capture records (the shape of ``tests/events/sagemaker_data_capture_modelpilot.jsonl``,
CSV payloads for the 4-feature churn model) written below each hour in a folder per version,
``captures/churn/prod/YYYY/MM/DD/HH/v<N>/``. The stable version's folder holds badly drifted traffic that the
candidate's metric must never read.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from modelpilot.bootstrap import bootstrap
from modelpilot.config import Settings
from modelpilot.domain.commands import AdvanceCanaries, PromoteModel, RegisterModel
from modelpilot.package.builder import write_package
from modelpilot.testing import FakeClock

POLICY = """\
environments: [dev, prod]
models:
  churn:
    environments:
      prod:
        canary:
          steps: [10, 50, 100]
          interval: 10m
          min_samples: 400
          analysis:
            - {name: drift, kind: drift, max_severity: warning}
"""
FEATURES = [
    {"name": "tenure", "type": "numeric", "minimum": 0},
    {"name": "charges", "type": "numeric"},
    {"name": "calls", "type": "numeric", "minimum": 0},
    {"name": "plan", "type": "categorical", "allowed_values": ["basic", "pro", "max"]},
]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TICK = AdvanceCanaries(actor="system:scheduler", trigger="timer")
SAMPLE = Path(__file__).resolve().parents[1] / "events" / "sagemaker_data_capture_modelpilot.jsonl"


def rows(n, rng, *, charges_shift=0.0, calls_shift=0.0):
    tenure = rng.gamma(2.0, 12.0, n)
    charges = rng.normal(70 + charges_shift, 20, n)
    calls = rng.poisson(1.5 + calls_shift, n)
    plan = rng.choice(["basic", "pro", "max"], n, p=[0.5, 0.3, 0.2])
    return [f"{t:.3f},{c:.3f},{k},{p}" for t, c, k, p in zip(tenure, charges, calls, plan, strict=True)]


def capture_records(lines, per_record=4):
    """SageMaker data-capture records (the sample's first line, with its CSV payload replaced)."""
    template = json.loads(SAMPLE.read_text().splitlines()[0])
    out = []
    for i in range(0, len(lines), per_record):
        record = json.loads(json.dumps(template))
        record["captureData"]["endpointInput"]["data"] = "\n".join(lines[i : i + per_record]) + "\n"
        record["eventMetadata"]["eventId"] = f"00000000-0000-0000-0000-{i:012d}"
        out.append(json.dumps(record))
    return "\n".join(out) + "\n"


@pytest.fixture
def canary(tmp_path):
    """churn v1 live in prod, v2's canary at 10 % since T0 (both versions carry reference data)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    clock = FakeClock(T0)
    bus = bootstrap(Settings(backend="local", home=str(home)), clock=clock)
    rng = np.random.default_rng(7)
    for n in (1, 2):
        package = tmp_path / f"pkg-{n}"
        reference = "tenure,charges,calls,plan\n" + "\n".join(rows(3000, rng)) + "\n"
        write_package(
            package,
            files={"model.bin": f"weights-{n}".encode(), "reference.csv": reference.encode()},
            artifacts=["model.bin"],
            name="churn",
            framework="test",
            metrics={"auc": 0.8 + n / 100},
            features=FEATURES,
            reference_data_uri="reference.csv",
        )
        bus.handle(RegisterModel(package_uri=str(package), actor="alice"))
        bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=n))
        outcome = bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=n))
        assert outcome.status == ("promoted" if n == 1 else "canary_started"), outcome.message
    hour = Path(bus.services.data_root) / "captures" / "churn" / "prod" / "2026" / "03" / "01" / "12"
    stable = hour / "v1"
    stable.mkdir(parents=True)
    (stable / "capture-0.jsonl").write_text(capture_records(rows(1200, rng, charges_shift=40.0, calls_shift=2.0)))
    return bus, clock, rng, hour


def write_candidate(hour, lines, name="capture-0.jsonl"):
    folder = hour / "v2"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(capture_records(lines))


def drift_of(outcome):
    (result,) = outcome.data["canaries"]
    (comparison,) = result["analysis"]["comparisons"]
    return comparison


def test_the_candidates_healthy_traffic_passes_and_the_stables_drift_is_not_read(canary):
    bus, clock, rng, hour = canary
    write_candidate(hour, rows(500, rng)[:300])
    write_candidate(hour, rows(500, rng)[:300], name="capture-1.jsonl.gz.partial")  # not a data file: skipped
    write_candidate(hour, rows(300, rng), name="capture-1.jsonl")
    clock.advance(600)
    outcome = bus.handle(TICK)
    comparison = drift_of(outcome)
    assert comparison["passed"] is True, comparison
    assert comparison["evidence"]["rows"] == 600 and comparison["evidence"]["files"] == 2
    assert (comparison["evidence"]["severity"], comparison["evidence"]["drifted_features"]) == ("none", [])
    assert comparison["samples"] == 600 and comparison["candidate"] == 0.0
    canary_row = bus.services.registry.get_canary("churn", "prod")
    assert (canary_row.step, canary_row.weight) == (1, 50)
    record = bus.services.registry.audit_records("churn")[-1]
    assert record.action == "canary_advance"
    assert record.evidence["analysis"]["comparisons"][0]["evidence"]["rows"] == 600


def test_the_candidates_drifted_traffic_fails_the_step_with_its_evidence(canary):
    bus, clock, rng, hour = canary
    write_candidate(hour, rows(800, rng, charges_shift=25.0, calls_shift=1.5))
    clock.advance(600)
    outcome = bus.handle(TICK)
    comparison = drift_of(outcome)
    assert comparison["passed"] is False
    assert comparison["evidence"]["severity"] == "critical"
    assert sorted(comparison["evidence"]["drifted_features"]) == ["calls", "charges"]
    assert comparison["candidate"] == 0.5 and comparison["samples"] == 800
    assert "critical drift on 2 of 4 feature(s)" in comparison["detail"]
    stored = bus.services.registry.get_canary("churn", "prod")
    assert (stored.state, stored.weight) == ("aborted", 0)
    record = bus.services.registry.audit_records("churn")[-1]
    assert record.action == "canary_abort" and "drift: critical drift" in record.reason
    assert record.evidence["analysis"]["comparisons"][0]["evidence"]["severity"] == "critical"


def test_a_threshold_on_the_share_of_drifted_features_fails_even_when_any_severity_is_allowed(canary):
    bus, clock, rng, hour = canary
    policy = POLICY.replace("max_severity: warning}", "max_severity: critical, threshold: 0.2}")
    (Path(bus.services.data_root).parent / "modelpilot.yaml").write_text(policy)
    bus = bootstrap(Settings(backend="local", home=str(Path(bus.services.data_root).parent)), clock=bus.services.clock)
    write_candidate(hour, rows(800, rng, charges_shift=25.0, calls_shift=1.5))
    clock.advance(600)
    comparison = drift_of(bus.handle(TICK))
    assert comparison["passed"] is False and comparison["threshold"] == 0.2
    assert "a share up to 0.2" in comparison["detail"]


def test_fewer_rows_than_min_samples_is_inconclusive_and_holds(canary):
    bus, clock, rng, hour = canary
    write_candidate(hour, rows(100, rng, charges_shift=25.0))
    clock.advance(600)
    outcome = bus.handle(TICK)
    comparison = drift_of(outcome)
    assert comparison["passed"] is None and comparison["samples"] == 100
    assert "at least 400 are needed" in comparison["detail"]
    stored = bus.services.registry.get_canary("churn", "prod")
    assert (stored.state, stored.weight, stored.failures) == ("running", 10, 0)
    assert outcome.data["canaries"][0]["status"] == "held"


def test_captures_outside_the_steps_hours_are_not_read(canary):
    bus, clock, rng, hour = canary
    earlier = hour.parent / "11" / "v2"
    earlier.mkdir(parents=True)
    (earlier / "capture-0.jsonl").write_text(capture_records(rows(800, rng, charges_shift=25.0)))
    clock.advance(600)
    comparison = drift_of(bus.handle(TICK))
    assert comparison["passed"] is None and comparison["samples"] == 0
