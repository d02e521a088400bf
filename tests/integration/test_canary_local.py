"""A canary on the local backend: SQLite registry, folder artifacts, the SQLite telemetry store.

The scheduler is "restarted" between ticks (a fresh bus over the same home): all the
canary's state lives in the store, so nothing is lost. Two threads acting on one canary
at once: exactly one wins.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from modelpilot.config import Settings
from modelpilot.domain.commands import AdvanceCanaries, ChangeCanary, PromoteModel, RegisterModel
from modelpilot.exceptions import ConcurrencyConflict
from modelpilot.testing import FakeClock

POLICY = """
environments: [dev, prod]
models:
  churn:
    slos:
      - name: latency
        environment: prod
        objective: 0.99
        sli: {kind: threshold, source: local, threshold_ms: 250, good: {query: requests.fast}, total: {query: requests}}
    environments:
      prod:
        canary:
          steps: [10, 50, 100]
          interval: 10m
          min_samples: 500
          analysis:
            - {name: error-ratio, threshold: 0.01}
            - {name: latency, slo: latency, threshold: 0.02}
"""
TICK = AdvanceCanaries(actor="system:scheduler", trigger="timer")


@pytest.fixture
def home(tmp_path, make_package):
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    clock = FakeClock()
    bus = new_bus(home, clock)
    for number, auc in ((1, 0.85), (2, 0.9)):
        bus.handle(RegisterModel(package_uri=str(make_package(auc=auc)), actor="alice"))
        bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=number))
        outcome = bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=number))
        assert outcome.status == ("promoted" if number == 1 else "canary_started"), outcome.message
    return home, clock


def new_bus(home, clock):
    from modelpilot.bootstrap import bootstrap

    return bootstrap(Settings(backend="local", home=str(home), policy=str(home / "modelpilot.yaml")), clock=clock)


def serve(bus, clock, minutes, *, errors=0, slow=0):
    """``minutes`` of prod traffic, 100 requests a minute per version; ``errors``/``slow`` of the candidate's."""
    lines = []
    for minute in range(minutes):
        at = (clock.now + timedelta(minutes=minute, seconds=30)).isoformat()
        for version, bad, late in ((1, 0, 0), (2, errors, slow)):
            base = {"type": "request", "model": "churn", "environment": "prod", "version": version, "time": at}
            for count, status, latency in ((100 - bad - late, 200, 40.0), (bad, 503, 10.0), (late, 200, 900.0)):
                if count:
                    lines.append(json.dumps({**base, "count": count, "status": status, "latency_ms": latency}))
    bus.services.telemetry_ingest.ingest(lines)
    clock.advance(minutes * 60)


def test_restarting_the_scheduler_mid_canary_loses_nothing(home):
    home, clock = home
    first = new_bus(home, clock)
    serve(first, clock, 10)
    outcome = first.handle(TICK)
    assert outcome.status == "checked", outcome.message
    assert first.services.registry.get_canary("churn", "prod").weight == 50
    del first
    second = new_bus(home, clock)  # a fresh process's bus over the same home
    assert second.handle(TICK).status == "unchanged"  # nothing due right after the step began
    serve(second, clock, 10)
    outcome = second.handle(TICK)
    registry = second.services.registry
    assert registry.get_canary("churn", "prod").state == "promoted"
    assert registry.get_alias("churn", "prod").version == 2
    analysis = outcome.data["canaries"][0]["analysis"]
    assert {c["metric"]: c["passed"] for c in analysis["comparisons"]} == {"error-ratio": True, "latency": True}
    assert {c["samples"] for c in analysis["comparisons"]} == {1000}
    manifest = json.loads((home / "data" / "serving" / "churn" / "prod.json").read_text())
    assert manifest["weights"] == {"2": 100} and manifest["canary"]["state"] == "promoted"
    from modelpilot.service.queries import verify_audit

    assert all(v.ok for v in verify_audit(registry))


def test_slow_candidate_fails_the_latency_metric_counted_per_version(home):
    home, clock = home
    bus = new_bus(home, clock)
    serve(bus, clock, 10, slow=5)  # 5 % of the candidate's answers are slow, none of the stable's
    outcome = bus.handle(TICK)
    canary = bus.services.registry.get_canary("churn", "prod")
    assert (canary.state, canary.weight) == ("aborted", 0)
    comparisons = {c["metric"]: c for c in outcome.data["canaries"][0]["analysis"]["comparisons"]}
    assert comparisons["error-ratio"]["passed"] is True
    assert comparisons["latency"]["passed"] is False
    assert comparisons["latency"]["candidate"] == pytest.approx(0.05) and comparisons["latency"]["stable"] == 0.0


def test_two_threads_acting_on_one_canary_exactly_one_wins(home):
    home, clock = home
    results: list[str] = []
    barrier = threading.Barrier(2)

    def act(action):
        bus = new_bus(home, clock)
        barrier.wait(timeout=30)
        try:
            cmd = ChangeCanary(
                model="churn", environment="prod", action=action, actor="alice", expected_revision=1, reason=action
            )
            results.append(bus.handle(cmd).status)
        except ConcurrencyConflict:
            results.append("conflict")

    threads = [threading.Thread(target=act, args=(a,)) for a in ("abort", "promote")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) in (["aborted", "conflict"], ["conflict", "promoted"]), results
    bus = new_bus(home, clock)
    canary = bus.services.registry.get_canary("churn", "prod")
    assert canary.revision == 2
    alias = bus.services.registry.get_alias("churn", "prod")
    assert alias.version == (2 if canary.state == "promoted" else 1)


def test_labelled_feedback_compares_model_quality_per_version(tmp_path, make_package):
    """A ratio SLI over the local store's feedback series: the candidate's wrong answers against the stable's."""
    home = tmp_path / "quality-home"
    home.mkdir()
    policy = POLICY.replace(
        "            - {name: latency, slo: latency, threshold: 0.02}\n",
        "            - name: wrong-answers\n"
        "              threshold: 0.05\n"
        "              sli: {kind: ratio, source: local, good: {query: feedback.correct}, total: {query: feedback}}\n",
    )
    (home / "modelpilot.yaml").write_text(policy)
    clock = FakeClock()
    bus = new_bus(home, clock)
    for number, auc in ((1, 0.85), (2, 0.9)):
        bus.handle(RegisterModel(package_uri=str(make_package(auc=auc)), actor="alice"))
        bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=number))
        bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=number))
    lines = []
    for minute in range(10):
        at = (clock.now + timedelta(minutes=minute, seconds=30)).isoformat()
        for version, wrong in ((1, 10), (2, 30)):  # 10 % against 30 % wrong
            base = {"model": "churn", "environment": "prod", "version": version, "time": at}
            lines.append(json.dumps({**base, "type": "request", "count": 100, "status": 200, "latency_ms": 40}))
            lines.append(json.dumps({**base, "type": "feedback", "count": 100 - wrong, "correct": True}))
            lines.append(json.dumps({**base, "type": "feedback", "count": wrong, "correct": False}))
    bus.services.telemetry_ingest.ingest(lines)
    clock.advance(600)
    outcome = bus.handle(TICK)
    comparisons = {c["metric"]: c for c in outcome.data["canaries"][0]["analysis"]["comparisons"]}
    assert comparisons["wrong-answers"]["candidate"] == pytest.approx(0.3)
    assert comparisons["wrong-answers"]["stable"] == pytest.approx(0.1)
    assert comparisons["wrong-answers"]["passed"] is False and comparisons["error-ratio"]["passed"] is True
    assert bus.services.registry.get_canary("churn", "prod").state == "aborted"


def test_a_registry_file_from_before_canaries_gets_the_table(tmp_path):
    import sqlite3

    from modelpilot.adapters.local.registry import SqliteRegistry

    path = tmp_path / "registry.db"
    SqliteRegistry(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE canaries")
    reopened = SqliteRegistry(path)
    assert reopened.get_canary("churn", "prod") is None and reopened.list_canaries(active_only=False) == []
