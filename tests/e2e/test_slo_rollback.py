"""End to end on the local backend: error bursts → SLO check → automatic rollback, once per incident."""

from __future__ import annotations

import pytest

from modelpilot.bootstrap import bootstrap
from modelpilot.config import Settings
from modelpilot.domain.commands import CheckSlos, PromoteModel, RegisterModel
from modelpilot.service.queries import verify_audit
from modelpilot.service.slo.handlers import on_slo_burn_alert
from modelpilot.testing import FakeClock
from tests.support.slo import SLO_POLICY, make_package, request_lines


@pytest.fixture
def env(tmp_path):
    policy = tmp_path / "modelpilot.yaml"
    policy.write_text(SLO_POLICY, encoding="utf-8")
    clock = FakeClock()
    bus = bootstrap(Settings(backend="local", home=str(tmp_path / "home"), policy=str(policy)), clock=clock)
    for seed in (1, 2, 3):
        bus.handle(RegisterModel(package_uri=str(make_package(tmp_path / f"p{seed}", seed=seed)), actor="alice"))
    return bus, clock


def _release(bus, clock, version):
    for env in ("staging", "prod"):
        outcome = bus.handle(PromoteModel(model="churn", environment=env, actor="alice", version=version))
        assert outcome.status == "promoted", outcome.message
    clock.advance(3600)


def _feed(bus, clock, version, minutes, **kw):
    start = clock.now
    store = bus.services.metrics_sources["local"]
    store.ingest(request_lines("churn", "prod", version, start, minutes, **kw))
    clock.advance(minutes * 60)


def _rollbacks(bus):
    return [c for c in bus.services.registry.alias_history("churn", "prod") if c.action == "rollback"]


def _check(bus, clock):
    return bus.handle(CheckSlos(actor="system:scheduler", now=clock.now))


def test_error_burst_rolls_back_exactly_once_with_the_alert_in_the_audit(env):
    bus, clock = env
    _release(bus, clock, 1)
    _feed(bus, clock, 1, 120)
    _release(bus, clock, 2)
    _feed(bus, clock, 2, 90)  # healthy
    assert _check(bus, clock).data["alerts"] == 0
    _feed(bus, clock, 2, 60, errors=20)  # 20 % errors: burn rate 20 over 1h and 5m
    outcome = _check(bus, clock)
    assert outcome.data["alerts"] == 1
    alert = next(e for e in outcome.events if e.name == "SloBurnAlert")
    assert (alert.slo, alert.severity, alert.long_window, alert.short_window) == (
        "availability",
        "page",
        "1h",
        "5m",
    )
    assert alert.burn_rate_long == pytest.approx(20.0 * 60 / 60, rel=1e-9)
    assert [f.status for f in outcome.follow_ups] == ["rolled_back"]
    assert bus.services.registry.get_alias("churn", "prod").version == 1
    rollback = [r for r in bus.services.registry.audit_records("churn") if r.action == "rollback"]
    assert len(rollback) == 1 and rollback[0].actor == "system:slo"
    assert rollback[0].evidence["alert"]["alert_id"] == alert.alert_id
    assert rollback[0].evidence["alert"]["burn_rate_long"] == pytest.approx(20.0)
    breach = [r for r in bus.services.registry.audit_records("churn") if r.action == "slo_breach"]
    assert [r.to_version for r in breach] == [2]
    # the same alert delivered again changes nothing
    again = on_slo_burn_alert(alert, bus)
    assert again is not None and again.status == "noop"
    assert len(_rollbacks(bus)) == 1
    assert all(v.ok for v in verify_audit(bus.services.registry))


def test_second_burst_inside_the_cooldown_rolls_back_nothing(env):
    bus, clock = env
    _release(bus, clock, 1)
    _feed(bus, clock, 1, 60)
    _release(bus, clock, 2)
    _release(bus, clock, 3)
    _feed(bus, clock, 3, 60, errors=30)
    first = _check(bus, clock)
    assert [f.status for f in first.follow_ups] == ["rolled_back"]
    assert bus.services.registry.get_alias("churn", "prod").version == 2
    clock.advance(600)
    _feed(bus, clock, 2, 60, errors=30)  # v2 burns too, 70 minutes after the rollback (cooldown 2h)
    second = _check(bus, clock)
    assert second.data["alerts"] == 1
    assert [f.status for f in second.follow_ups] == ["skipped"]
    assert "cooldown" in second.follow_ups[0].message
    assert len(_rollbacks(bus)) == 1
    assert bus.services.registry.get_alias("churn", "prod").version == 2
    skipped = [e["detail"] for e in bus.services.publisher.read() if e["type"] == "RollbackSkipped"]
    assert skipped and "cooldown" in skipped[-1]["reason"]


def test_rollback_never_lands_on_a_version_that_breached(env):
    bus, clock = env
    _release(bus, clock, 1)
    _feed(bus, clock, 1, 60)
    _release(bus, clock, 2)
    _feed(bus, clock, 2, 60, slow=40)  # v2: latency SLO pages, but it is 'latency'... see policy
    breached = _check(bus, clock)
    assert breached.data["alerts"] == 1
    assert bus.services.registry.get_alias("churn", "prod").version == 1  # v2 rolled back at once
    clock.advance(3 * 3600)  # cooldown over; v3 released
    _release(bus, clock, 3)
    _feed(bus, clock, 3, 60, errors=30)
    outcome = _check(bus, clock)
    assert [f.status for f in outcome.follow_ups] == ["rolled_back"]
    assert outcome.follow_ups[0].data["version"] == 1  # v2 breached: never a target
    assert all(c.to_version != 2 for c in _rollbacks(bus))


def test_breached_version_without_rollback_is_excluded_too(tmp_path):
    policy = tmp_path / "modelpilot.yaml"
    policy.write_text(
        SLO_POLICY.replace("on_slo_page: true", "on_slo_page: true, on_slo_ticket: false"), encoding="utf-8"
    )
    clock = FakeClock()
    bus = bootstrap(Settings(backend="local", home=str(tmp_path / "home"), policy=str(policy)), clock=clock)
    for seed in (1, 2, 3):
        bus.handle(RegisterModel(package_uri=str(make_package(tmp_path / f"p{seed}", seed=seed)), actor="alice"))
    _release(bus, clock, 1)
    _feed(bus, clock, 1, 60)
    _release(bus, clock, 2)
    # v2 burns slowly: ticket only (burn 4 over 1d and 2h > 3), no rollback, but the breach is recorded
    _feed(bus, clock, 2, 180, errors=4)
    ticket = _check(bus, clock)
    assert [e.severity for e in ticket.events if e.name == "SloBurnAlert"] == ["ticket"]
    assert ticket.follow_ups == []
    assert bus.services.registry.get_alias("churn", "prod").version == 2
    _release(bus, clock, 3)
    _feed(bus, clock, 3, 60, errors=30)
    outcome = _check(bus, clock)
    assert [f.status for f in outcome.follow_ups] == ["rolled_back"]
    assert outcome.follow_ups[0].data["version"] == 1


def test_no_traffic_and_missing_data_never_roll_back(env):
    bus, clock = env
    _release(bus, clock, 1)
    outcome = _check(bus, clock)  # no telemetry at all
    assert outcome.data["alerts"] == 0
    row = outcome.data["slos"][0]
    assert row["budget_remaining"] is None and row["state"] == "ok"
    assert set(row["burn_rates"].values()) == {None}
    assert _rollbacks(bus) == []
