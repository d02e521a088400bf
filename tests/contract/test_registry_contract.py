"""The RegistryStore contract: every adapter (fake, SQLite, DynamoDB, Azure Table) must pass it."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from modelpilot.domain.audit import AuditHead, verify_chain
from modelpilot.domain.model import Approval, MonitorStatus
from modelpilot.exceptions import ConcurrencyConflict, UnknownModel, UnknownVersion
from tests.support.builders import T0, change, entry, manifest


def register(registry, name="churn", seed="a", **kw):
    m = manifest(name, seed=seed, **kw)
    from modelpilot.package.manifest import manifest_digest

    return registry.register_version(
        manifest=m,
        manifest_digest=manifest_digest(m),
        package_uri=f"pkg://{name}/{seed}",
        registered_by="alice",
        registered_at=T0,
        source="upload",
        external_id=f"ext-{seed}",
        status="registered",
        audit=entry(name, "register"),
    )


def test_versions_are_numbered_from_one_and_idempotent_on_digest(registry):
    v1, created1 = register(registry, seed="a")
    v2, created2 = register(registry, seed="b")
    again, created3 = register(registry, seed="a")
    assert (v1.version, v2.version, again.version) == (1, 2, 1)
    assert (created1, created2, created3) == (True, True, False)
    assert [v.version for v in registry.list_versions("churn")] == [1, 2]
    assert registry.list_models() == ["churn"]
    records = registry.audit_records("churn")
    assert [r.action for r in records] == ["register", "register"]
    assert [r.to_version for r in records] == [1, 2]


def test_get_and_find_version_round_trip(registry):
    v1, _ = register(registry, seed="a", latency_p95_ms=12.5)
    got = registry.get_version("churn", 1)
    assert got.manifest == v1.manifest
    assert got.manifest.metrics == {"auc": 0.85, "latency_p95_ms": 12.5}
    assert got.registered_by == "alice" and got.registered_at == T0
    assert registry.find_version("churn", manifest_digest=v1.manifest_digest).version == 1
    assert registry.find_version("churn", external_id="ext-a").version == 1
    assert registry.find_version("churn", manifest_digest="f" * 64) is None
    with pytest.raises(UnknownModel):
        registry.get_version("nope", 1)
    with pytest.raises(UnknownVersion):
        registry.get_version("churn", 9)


def test_set_version_status_is_idempotent(registry):
    register(registry)
    assert registry.set_version_status("churn", 1, "rejected", entry(action="reject")) is True
    assert registry.set_version_status("churn", 1, "rejected", entry(action="reject")) is False
    assert registry.get_version("churn", 1).status == "rejected"
    assert [r.action for r in registry.audit_records("churn")] == ["register", "reject"]


def test_move_alias_compare_and_set(registry):
    register(registry, seed="a")
    register(registry, seed="b")
    assert registry.get_alias("churn", "prod") is None
    alias = registry.move_alias(
        change=change("churn", "prod", 1, None, 1), expected_revision=0, audit=entry(action="promote")
    )
    assert (alias.version, alias.revision) == (1, 1)
    with pytest.raises(ConcurrencyConflict):
        registry.move_alias(
            change=change("churn", "prod", 1, None, 2), expected_revision=0, audit=entry(action="promote")
        )
    registry.move_alias(change=change("churn", "prod", 2, 1, 2), expected_revision=1, audit=entry(action="promote"))
    got = registry.get_alias("churn", "prod")
    assert (got.version, got.revision) == (2, 2)
    history = registry.alias_history("churn", "prod")
    assert [(c.revision, c.from_version, c.to_version) for c in history] == [(1, None, 1), (2, 1, 2)]
    assert [r.action for r in registry.audit_records("churn")].count("promote") == 2


def test_retried_move_that_already_committed_is_recognised(registry):
    register(registry)
    first = change("churn", "dev", 1, None, 1)
    registry.move_alias(change=first, expected_revision=0, audit=entry(action="promote"))
    again = registry.move_alias(change=first, expected_revision=0, audit=entry(action="promote"))
    assert again.revision == 1
    assert len(registry.alias_history("churn", "dev")) == 1
    assert len(registry.audit_records("churn")) == 2  # register + one promote


def test_approvals_once_per_approver(registry):
    register(registry)
    approval = Approval("churn", 1, "prod", "bob", T0, "ok")
    assert registry.add_approval(approval, entry(action="approve")) is True
    assert registry.add_approval(approval, entry(action="approve")) is False
    registry.add_approval(Approval("churn", 1, "prod", "carol", T0 + timedelta(seconds=1)), entry(action="approve"))
    assert [a.approver for a in registry.list_approvals("churn", 1, "prod")] == ["bob", "carol"]
    assert registry.list_approvals("churn", 1, "staging") == []


def test_audit_chain_verifies_and_records_round_trip(registry):
    register(registry)
    registry.append_audit(entry(action="note", reason="unicode ✓ text", evidence={"k": [1, 2], "n": None}))
    records = registry.audit_records("churn")
    assert [r.seq for r in records] == [1, 2]
    assert records[1].evidence == {"k": [1, 2], "n": None}
    assert records[1].prev_hash == records[0].hash
    assert verify_chain("churn", records).ok


def test_chain_head_moves_with_every_append_in_the_same_write(registry):
    """The head (seq, hash) always equals the chain's last record, whatever kind of change appended it."""

    def head_is_last(model="churn"):
        last = registry.audit_records(model)[-1]
        assert registry.audit_heads()[model] == AuditHead(last.seq, last.hash)

    assert registry.audit_heads() == {} and registry.audited_models() == []
    register(registry, seed="a")
    head_is_last()
    registry.set_version_status("churn", 1, "rejected", entry(action="reject"))
    head_is_last()
    registry.move_alias(change=change("churn", "dev", 1, None, 1), expected_revision=0, audit=entry(action="promote"))
    head_is_last()
    registry.add_approval(Approval("churn", 1, "prod", "bob", T0, "ok"), entry(action="approve"))
    head_is_last()
    # a chain without versions (an alarm for a model never registered) is still found
    registry.append_audit(entry("ghost", "alarm"))
    head_is_last("ghost")
    assert registry.audit_heads()["churn"].seq == 4 and registry.audited_models() == ["churn", "ghost"]
    assert registry.list_models() == ["churn"]
    # adopting a head never replaces one that exists
    assert registry.adopt_audit_head("churn", AuditHead(1, "f" * 64)) is False
    head_is_last()


def test_monitor_status_latest_wins(registry):
    register(registry)
    assert registry.get_monitor_status("churn", "prod", "drift") is None
    registry.put_monitor_status(MonitorStatus("churn", "prod", "drift", "alert", 1, T0, "psi high", {"psi": 0.4}))
    registry.put_monitor_status(MonitorStatus("churn", "prod", "drift", "ok", 1, T0 + timedelta(hours=1)))
    got = registry.get_monitor_status("churn", "prod", "drift")
    assert got.state == "ok" and got.updated_at == T0 + timedelta(hours=1)
    registry.put_monitor_status(MonitorStatus("churn", "staging", "slo", "alert", 1, T0, "burn", {"rate": 14.4}))
    assert {(s.environment, s.kind) for s in registry.list_monitor_status("churn")} == {
        ("prod", "drift"),
        ("staging", "slo"),
    }


def test_concurrent_registrations_never_duplicate_or_skip(registry):
    results, errors = [], []

    def worker(i):
        try:
            for attempt in range(20):
                try:
                    results.append(register(registry, seed=f"s{i}")[0].version)
                    return
                except ConcurrencyConflict:
                    continue
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == list(range(1, 9))
    records = registry.audit_records("churn")
    assert verify_chain("churn", records).ok
    assert registry.audit_heads()["churn"] == AuditHead(records[-1].seq, records[-1].hash)


def test_concurrent_alias_moves_one_winner_per_revision(registry):
    for seed in "abcdef":
        register(registry, seed=seed)
    wins, conflicts = [], []

    def worker(target):
        current = registry.get_alias("churn", "prod")
        rev = current.revision if current else 0
        frm = current.version if current else None
        try:
            registry.move_alias(
                change=change("churn", "prod", rev + 1, frm, target),
                expected_revision=rev,
                audit=entry(action="promote", to_version=target),
            )
            wins.append(target)
        except ConcurrencyConflict:
            conflicts.append(target)

    for _round in range(3):
        threads = [threading.Thread(target=worker, args=(v,)) for v in range(1, 7)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    history = registry.alias_history("churn", "prod")
    assert [c.revision for c in history] == list(range(1, len(history) + 1))
    assert len(history) == len(wins)
    for prev, nxt in zip(history, history[1:]):
        assert nxt.from_version == prev.to_version
    promotes = [r for r in registry.audit_records("churn") if r.action == "promote"]
    assert len(promotes) == len(wins)
    assert verify_chain("churn", registry.audit_records("churn")).ok


# -- canaries ------------------------------------------------------------------------
def _canary(env="prod", *, candidate=2, revision=1, start=T0, **kw):
    from modelpilot.domain.canary import Canary

    values = {
        "model": "churn",
        "environment": env,
        "stable_version": 1,
        "candidate_version": candidate,
        "weight": 5,
        "step": 0,
        "state": "running",
        "revision": revision,
        "started_at": start,
        "updated_at": start,
        "updated_by": "alice",
        "step_started_at": start,
        **kw,
    }
    return Canary(**values)


def test_canary_create_read_and_compare_and_set(registry):
    register(registry)
    assert registry.get_canary("churn", "prod") is None
    first = _canary(gate_report_digest="d" * 64, trigger="req-1")
    saved = registry.save_canary(first, expected_revision=0, audit=entry(action="canary_start", environment="prod"))
    assert saved == first
    got = registry.get_canary("churn", "prod")
    assert got == first and got.trigger == "req-1" and got.gate_report_digest == "d" * 64
    later = T0 + timedelta(minutes=10)
    evidence = {"step": 0, "passed": True, "comparisons": [{"metric": "error-ratio", "candidate": 0.01}]}
    second = first.evolve(
        at=later, by="system:canary", weight=25, step=1, step_started_at=later, last_analysis=evidence
    )
    registry.save_canary(second, expected_revision=1, audit=entry(action="canary_advance", environment="prod"))
    got = registry.get_canary("churn", "prod")
    assert (got.revision, got.weight, got.step, got.updated_by) == (2, 25, 1, "system:canary")
    assert got.last_analysis == evidence and got.step_started_at == later
    # a stale writer (it read revision 1) loses, and nothing of it is written
    stale = first.evolve(at=later, by="carol", state="paused")
    with pytest.raises(ConcurrencyConflict):
        registry.save_canary(stale, expected_revision=1, audit=entry(action="canary_pause", environment="prod"))
    # starting another canary while one is active is a conflict too
    with pytest.raises(ConcurrencyConflict):
        registry.save_canary(_canary(candidate=3), expected_revision=0, audit=entry(action="canary_start"))
    assert registry.get_canary("churn", "prod").revision == 2
    records = registry.audit_records("churn")
    assert [r.action for r in records] == ["register", "canary_start", "canary_advance"]
    assert verify_chain("churn", records).ok


def test_canary_retry_of_a_committed_save_writes_nothing_twice(registry):
    register(registry)
    first = _canary()
    registry.save_canary(first, expected_revision=0, audit=entry(action="canary_start"))
    assert registry.save_canary(first, expected_revision=0, audit=entry(action="canary_start")) == first
    paused = first.evolve(at=T0 + timedelta(minutes=1), by="carol", state="paused")
    registry.save_canary(paused, expected_revision=1, audit=entry(action="canary_pause"))
    assert registry.save_canary(paused, expected_revision=1, audit=entry(action="canary_pause")) == paused
    assert [r.action for r in registry.audit_records("churn")] == ["register", "canary_start", "canary_pause"]


def test_canary_revision_must_follow_the_expected_one(registry):
    register(registry)
    with pytest.raises(ValueError, match="expected_revision"):
        registry.save_canary(_canary(revision=3), expected_revision=0, audit=entry(action="canary_start"))
    assert registry.get_canary("churn", "prod") is None


def test_list_canaries_returns_active_ones_unless_told(registry):
    register(registry)
    register(registry, name="fraud")
    registry.save_canary(_canary("prod"), expected_revision=0, audit=entry(action="canary_start"))
    staging = _canary("staging")
    registry.save_canary(staging, expected_revision=0, audit=entry(action="canary_start"))
    ended = staging.evolve(at=T0 + timedelta(hours=1), by="carol", state="aborted", weight=0)
    registry.save_canary(ended, expected_revision=1, audit=entry(action="canary_abort"))
    other = _canary("prod", state="paused")
    other = type(other)(**{**other.__dict__, "model": "fraud"})
    registry.save_canary(other, expected_revision=0, audit=entry("fraud", action="canary_start"))
    active = registry.list_canaries()
    assert sorted((c.model, c.environment, c.state) for c in active) == [
        ("churn", "prod", "running"),
        ("fraud", "prod", "paused"),
    ]
    every = registry.list_canaries(active_only=False)
    assert sorted((c.model, c.environment, c.state) for c in every) == [
        ("churn", "prod", "running"),
        ("churn", "staging", "aborted"),
        ("fraud", "prod", "paused"),
    ]


def test_a_finished_canary_is_replaced_by_a_new_one(registry):
    register(registry)
    first = _canary()
    registry.save_canary(first, expected_revision=0, audit=entry(action="canary_start"))
    done = first.evolve(at=T0 + timedelta(hours=1), by="system:canary", state="promoted", weight=100)
    registry.save_canary(done, expected_revision=1, audit=entry(action="canary_promote"))
    # an operator acting on the finished canary's revision cannot touch the new one
    later = T0 + timedelta(days=1)
    fresh = _canary(candidate=3, start=later)
    registry.save_canary(fresh, expected_revision=0, audit=entry(action="canary_start"))
    assert registry.get_canary("churn", "prod") == fresh
    impostor = fresh.evolve(at=later, by="carol", state="aborted", weight=0)
    impostor = type(impostor)(**{**impostor.__dict__, "started_at": T0, "revision": 2})
    with pytest.raises(ConcurrencyConflict):
        registry.save_canary(impostor, expected_revision=1, audit=entry(action="canary_abort"))
    assert registry.get_canary("churn", "prod").state == "running"
    assert [c.candidate_version for c in registry.list_canaries()] == [3]


def test_concurrent_canary_saves_exactly_one_wins(registry):
    register(registry)
    first = _canary()
    registry.save_canary(first, expected_revision=0, audit=entry(action="canary_start"))
    later = T0 + timedelta(minutes=5)
    attempts = [
        first.evolve(at=later, by=who, state=state) for who, state in (("carol", "paused"), ("dave", "aborted"))
    ]
    results: list[str] = []

    def act(canary):
        try:
            registry.save_canary(
                canary, expected_revision=1, audit=entry(action="canary_change", actor=canary.updated_by)
            )
            results.append("won")
        except ConcurrencyConflict:
            results.append("lost")

    threads = [threading.Thread(target=act, args=(c,)) for c in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["lost", "won"]
    stored = registry.get_canary("churn", "prod")
    assert stored.revision == 2 and stored in attempts
    assert [r.action for r in registry.audit_records("churn")].count("canary_change") == 1


# -- a canary's promotion: the alias move and the canary's ending in one transaction -----------------
def _promotion_setup(registry):
    from modelpilot.ports import CanarySave

    register(registry)
    register(registry, seed="b")
    registry.move_alias(change=change("churn", "prod", 1, None, 1), expected_revision=0, audit=entry(action="promote"))
    running = _canary()
    registry.save_canary(running, expected_revision=0, audit=entry(action="canary_start"))
    promoted = running.evolve(at=T0 + timedelta(hours=1), by="system:canary", state="promoted", weight=100)
    ending = CanarySave(promoted, 1, entry(action="canary_promote", environment="prod"))
    return running, promoted, ending


def test_promotion_moves_the_alias_and_ends_the_canary_together(registry):
    _running, promoted, ending = _promotion_setup(registry)
    move = change("churn", "prod", 2, 1, 2)
    alias = registry.move_alias(change=move, expected_revision=1, audit=entry(action="promote"), canary=ending)
    assert (alias.version, alias.revision) == (2, 2)
    assert registry.get_alias("churn", "prod").version == 2
    assert registry.get_canary("churn", "prod") == promoted
    # a retry of the committed transaction is recognised and writes nothing twice
    again = registry.move_alias(change=move, expected_revision=1, audit=entry(action="promote"), canary=ending)
    assert again.version == 2
    records = registry.audit_records("churn")
    assert [r.action for r in records][-3:] == ["canary_start", "promote", "canary_promote"]
    assert [r.action for r in records].count("canary_promote") == 1
    assert verify_chain("churn", records).ok
    assert registry.list_canaries() == []


def test_promotion_that_lost_to_an_operator_changes_neither(registry):
    running, _promoted, ending = _promotion_setup(registry)
    aborted = running.evolve(at=T0 + timedelta(minutes=5), by="carol", state="aborted", weight=0)
    registry.save_canary(aborted, expected_revision=1, audit=entry(action="canary_abort"))
    before = [r.action for r in registry.audit_records("churn")]
    with pytest.raises(ConcurrencyConflict, match="canary"):
        registry.move_alias(
            change=change("churn", "prod", 2, 1, 2), expected_revision=1, audit=entry(action="promote"), canary=ending
        )
    assert registry.get_alias("churn", "prod").version == 1
    assert registry.alias_history("churn", "prod")[-1].revision == 1
    assert registry.get_canary("churn", "prod") == aborted
    assert [r.action for r in registry.audit_records("churn")] == before


def test_promotion_that_lost_to_another_alias_move_changes_neither(registry):
    running, _promoted, ending = _promotion_setup(registry)
    registry.move_alias(
        change=change("churn", "prod", 2, 1, 1, action="rollback"), expected_revision=1, audit=entry(action="rollback")
    )
    with pytest.raises(ConcurrencyConflict):
        registry.move_alias(
            change=change("churn", "prod", 2, 1, 2), expected_revision=1, audit=entry(action="promote"), canary=ending
        )
    assert registry.get_alias("churn", "prod").revision == 2
    assert registry.get_alias("churn", "prod").version == 1
    assert registry.get_canary("churn", "prod") == running
    assert "canary_promote" not in [r.action for r in registry.audit_records("churn")]
