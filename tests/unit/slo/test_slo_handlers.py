"""The SLO check and the rollback policy on the in-memory fakes, with a programmable metrics source."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from modelpilot import telemetry
from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import CheckSlos, HandleAlarm, PromoteModel, RegisterModel
from modelpilot.domain.events import DriftDetected
from modelpilot.exceptions import InvalidInput, TransientError
from modelpilot.package.builder import write_package
from modelpilot.policy import parse_policy
from modelpilot.ports import EventCounts, MetricsSource
from modelpilot.service.slo.handlers import on_drift_detected
from modelpilot.testing import fake_bus

HOUR = 3600


class ScriptedSource(MetricsSource):
    """Returns error ratios per version and window length; ``None`` = no data."""

    def __init__(self):
        self.ratio: dict[int, float | None] = {}
        self.calls = 0
        self.fail: Exception | None = None

    def counts(self, query, start, end):
        self.calls += 1
        if self.fail:
            raise self.fail
        version = (query.params or {})["labels"].get("version")
        ratio = (
            self.ratio.get(version)
            if version is not None
            else max((r for r in self.ratio.values() if r is not None), default=None)
        )
        if ratio is None:
            return EventCounts(0, 0, 0)
        total = (end - start).total_seconds()  # one request a second
        return EventCounts(good=total * (1 - ratio), total=total, points=10)


def _policy(rollback: dict | None = None, **slo_extra):
    slo = {
        "name": "availability",
        "environment": "prod",
        "objective": 0.99,
        "window": "30d",
        "sli": {"kind": "ratio", "source": "local", "good": {"query": "ok"}, "total": {"query": "all"}},
        **slo_extra,
    }
    return parse_policy(
        {
            "environments": ["staging", "prod"],
            "models": {
                "churn": {
                    "slos": [slo, {**slo, "name": "staging-availability", "environment": "staging"}],
                    "rollback": {"prod": rollback or {"on_slo_page": True, "cooldown": "1h"}},
                }
            },
        }
    )


@pytest.fixture
def setup():
    return _make(_policy())


def _make(policy):
    """A fake bus with three registered versions of churn and the scripted source as "local"."""
    source = ScriptedSource()
    bus = fake_bus(policy, metrics_sources={"local": source}, artifacts=FolderArtifactStore())
    root = Path(tempfile.mkdtemp(prefix="slo-handlers-"))
    for seed in (1, 2, 3):
        write_package(
            root / f"p{seed}",
            files={"m.bin": f"w{seed}".encode()},
            name="churn",
            framework="f",
            metrics={"auc": 0.9},
            lineage={"run_id": str(seed)},
            features=[{"name": "x", "type": "numeric"}],
        )
        bus.handle(RegisterModel(package_uri=str(root / f"p{seed}"), actor="alice"))
    return bus, source


def _live(bus, version):
    for env in ("staging", "prod"):
        bus.handle(PromoteModel(model="churn", environment=env, actor="alice", version=version))
    bus.services.clock.advance(2 * HOUR)


def _check(bus, **kw):
    return bus.handle(CheckSlos(actor="system:scheduler", model="churn", **kw))


def test_gauges_status_and_alert_of_a_burning_slo(setup):
    mem = telemetry.configure_in_memory()
    bus, source = setup
    _live(bus, 1)
    source.ratio = {1: 0.2}
    outcome = _check(bus, environment="prod")
    [alert] = outcome.events
    assert (alert.severity, alert.long_window, alert.short_window) == ("page", "1h", "5m")
    assert alert.burn_rate_long == pytest.approx(20.0) and alert.threshold == 14.4
    assert alert.budget_remaining == pytest.approx(1 - 20.0)
    points = {
        (a["slo"], a["window"]): v
        for a, v in mem.metric_points("modelpilot.slo.burn_rate")
        if a.get("model") == "churn" and a.get("environment") == "prod"
    }
    assert points[("availability", "1h")] == pytest.approx(20.0)
    assert points[("availability", "3d")] == pytest.approx(20.0)
    budget = [
        v
        for a, v in mem.metric_points("modelpilot.slo.error_budget_remaining")
        # the in-memory gauges live as long as the process: other tests' series differ in model or window
        if a == {"model": "churn", "environment": "prod", "slo": "availability", "window": "30d"}
    ]
    assert budget == [pytest.approx(-19.0)]
    status = bus.services.registry.get_monitor_status("churn", "prod", "slo")
    assert status.state == "alert" and status.version == 1 and "availability page" in status.summary


def test_alert_id_is_deterministic_for_the_same_check(setup):
    bus, source = setup
    _live(bus, 1)
    source.ratio = {1: 0.5}
    now = bus.services.clock()
    policy = parse_policy(
        {
            "environments": ["staging", "prod"],
            "models": {"churn": {"slos": [s.model_dump(mode="json") for s in _policy().models["churn"].slos]}},
        }
    )
    bus.services.policy_loader = lambda: policy  # no rollback: the alias stays, the check repeats
    first = _check(bus, environment="prod", now=now)
    second = _check(bus, environment="prod", now=now)
    assert first.events[0].alert_id == second.events[0].alert_id
    assert "@" + now.isoformat() in first.events[0].alert_id
    later = _check(bus, environment="prod", now=now + timedelta(minutes=5))
    assert later.events[0].alert_id != first.events[0].alert_id


def test_check_of_one_tick_runs_once_through_the_dispatch(setup):
    from modelpilot.service.dispatch import Delivery, handle_once

    bus, source = setup
    _live(bus, 1)
    source.ratio = {1: 0.0}
    tick = Delivery("timer slo", CheckSlos(actor="system:scheduler", model="churn", trigger="schedule-1"), "slo:1")
    first = handle_once(bus, tick, function="slo_check")
    calls = source.calls
    second = handle_once(bus, tick, function="slo_check")
    assert first["status"] == "checked" and "duplicate" not in first
    assert second == {**first, "duplicate": True} and source.calls == calls


def test_slo_alert_in_staging_blocks_promotion_to_prod_until_healthy():
    policy = parse_policy(
        {**_policy().model_dump(mode="json"), "defaults": {"environments": {"prod": {"require_slo_healthy": True}}}}
    )
    bus, source = _make(policy)
    bus.handle(PromoteModel(model="churn", environment="staging", actor="alice", version=1))
    source.ratio = {1: 0.3}
    _check(bus, environment="staging")
    blocked = bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=1))
    assert blocked.status == "blocked" and "slo_healthy" in blocked.data["gate_report"]["gates"][-1]["gate"]
    source.ratio = {1: 0.0}
    _check(bus, environment="staging")
    assert bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=1)).status == "promoted"


def test_ticket_does_not_roll_back_unless_the_policy_says_so(setup):
    bus, source = setup
    _live(bus, 1)
    _live(bus, 2)
    source.ratio = {2: 0.04}  # burn 4: ticket (1d/2h > 3), no page
    outcome = _check(bus, environment="prod")
    assert [e.severity for e in outcome.events] == ["ticket"] and outcome.follow_ups == []
    bus2, source2 = _make(_policy({"on_slo_page": True, "on_slo_ticket": True}))
    _live(bus2, 1)
    _live(bus2, 2)
    source2.ratio = {2: 0.04}
    assert [f.status for f in _check(bus2, environment="prod").follow_ups] == ["rolled_back"]


def test_rollback_latency_is_recorded(setup):
    mem = telemetry.configure_in_memory()
    bus, source = setup
    _live(bus, 1)
    _live(bus, 2)
    source.ratio = {2: 0.5}
    outcome = _check(bus, environment="prod")
    assert outcome.follow_ups[0].data["alert_to_rollback_seconds"] == 0.0  # same simulated instant
    assert any(a.get("environment") == "prod" for a, _v in mem.metric_points("modelpilot.rollback.latency_seconds"))


def test_missing_or_failing_source_is_reported_and_changes_no_status(setup):
    bus, source = setup
    _live(bus, 1)
    source.fail = InvalidInput("no such metric")
    outcome = _check(bus)
    assert outcome.data["alerts"] == 0
    assert all("no such metric" in row["error"] for row in outcome.data["slos"])
    assert bus.services.registry.get_monitor_status("churn", "prod", "slo") is None
    bus.services.metrics_sources.clear()
    rows = _check(bus).data["slos"]
    assert all("no metrics source 'local'" in row["error"] for row in rows)


def test_a_source_that_is_down_fails_the_check_before_it_writes_so_the_retry_alerts(setup):
    bus, source = setup
    _live(bus, 1)
    _live(bus, 2)
    source.ratio = {2: 0.5}
    records = len(bus.services.registry.audit_records("churn"))
    source.fail = TransientError("metrics store down")
    with pytest.raises(TransientError, match="metrics store down"):
        _check(bus, environment="prod")
    assert bus.services.registry.get_monitor_status("churn", "prod", "slo") is None
    assert len(bus.services.registry.audit_records("churn")) == records
    source.fail = None
    outcome = _check(bus, environment="prod")
    assert outcome.data["alerts"] == 1 and outcome.follow_ups[0].status == "rolled_back"


@pytest.mark.parametrize("failing", ["append_audit", "put_monitor_status"])
def test_a_breach_is_recorded_once_whichever_of_its_writes_fails(setup, failing):
    bus, source = setup
    _live(bus, 1)
    _live(bus, 2)
    source.ratio = {2: 0.5}
    registry = bus.services.registry
    write = getattr(registry, failing)

    def fail_once(*args, **kwargs):
        setattr(registry, failing, write)
        raise TransientError("table unavailable")

    setattr(registry, failing, fail_once)
    now = bus.services.clock()
    with pytest.raises(TransientError):
        _check(bus, environment="prod", now=now)
    _check(bus, environment="prod", now=now)  # the retry of the same tick
    breaches = [r for r in registry.audit_records("churn") if r.action == "slo_breach"]
    assert [(r.environment, r.to_version) for r in breaches] == [("prod", 2)]
    assert registry.get_monitor_status("churn", "prod", "slo").state == "alert"


def test_a_late_check_judges_the_version_live_at_its_time_not_the_one_rolled_back_to(setup):
    bus, source = setup
    _live(bus, 1)
    _live(bus, 2)
    source.ratio = {2: 0.5, 1: 0.5}  # the endpoint's errors, whichever version the query names
    tick = bus.services.clock()
    bus.services.clock.advance(5)  # the tick is delivered a moment after its time
    first = _check(bus, environment="prod", now=tick)
    assert first.follow_ups[0].status == "rolled_back"
    again = _check(bus, environment="prod", now=tick)  # the same tick delivered again after the rollback
    assert [r["version"] for r in again.data["slos"]] == [2]
    assert bus.services.registry.get_alias("churn", "prod").version == 1
    breaches = [r.to_version for r in bus.services.registry.audit_records("churn") if r.action == "slo_breach"]
    assert breaches == [2]


def _alarm(bus, name, state="ALARM", trigger="t1"):
    return bus.handle(
        HandleAlarm(
            model="churn",
            environment="prod",
            alarm_name=name,
            state=state,
            actor="system:cloudwatch",
            trigger=trigger,
            evidence={"region": "us-east-1"},
        )
    )


def test_alarm_named_in_policy_rolls_back_once_and_others_are_recorded():
    bus, _source = _make(_policy({"alarms": ["churn-prod-5xx", "churn-prod-latency-*"], "cooldown": "1h"}))
    _live(bus, 1)
    _live(bus, 2)
    assert _alarm(bus, "churn-prod-5xx", state="OK").status == "noop"
    other = _alarm(bus, "some-other-alarm")
    assert other.status == "recorded" and bus.services.registry.get_alias("churn", "prod").version == 2
    assert _alarm(bus, "some-other-alarm").status == "unchanged"
    records = [r for r in bus.services.registry.audit_records("churn") if r.action == "alarm"]
    assert len(records) == 1 and records[0].evidence["alarm"] == "some-other-alarm"
    rolled = _alarm(bus, "churn-prod-latency-p99", trigger="t2")
    assert rolled.status == "rolled_back" and rolled.data["version"] == 1
    assert _alarm(bus, "churn-prod-latency-p99", trigger="t2").status == "unchanged"  # redelivery
    again = _alarm(bus, "churn-prod-5xx", trigger="t3")  # same incident
    assert again.status == "skipped" and "cooldown" in again.message
    rollback = [r for r in bus.services.registry.audit_records("churn") if r.action == "rollback"]
    assert len(rollback) == 1 and rollback[0].evidence["alarm"] == "churn-prod-latency-p99"


def test_critical_drift_rolls_back_only_when_the_policy_says_so():
    for flag, severity, expected in (
        (True, "critical", "rolled_back"),
        (True, "warning", None),
        (False, "critical", None),
    ):
        bus, _source = _make(_policy({"on_critical_drift": flag}))
        _live(bus, 1)
        _live(bus, 2)
        event = DriftDetected("churn", "prod", 2, severity, ["tenure"], "r-1", "mem://r-1")
        outcome = on_drift_detected(event, bus)
        assert (outcome.status if outcome else None) == expected
        if expected:
            record = [r for r in bus.services.registry.audit_records("churn") if r.action == "rollback"][0]
            assert record.actor == "system:drift" and record.evidence["drift"]["report_id"] == "r-1"


def test_a_check_at_a_time_before_the_alias_history_judges_the_live_version(setup):
    bus, source = setup
    start = bus.services.clock()
    _live(bus, 1)
    source.ratio = {1: 0.0}
    before = _check(bus, environment="prod", now=start - timedelta(hours=1))  # a clock behind the writer's
    assert [r["version"] for r in before.data["slos"]] == [1]
