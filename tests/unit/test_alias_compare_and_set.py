"""Promote and roll back under lost compare-and-set races: each retry reads and decides again, then gives up."""

from __future__ import annotations

import pytest

from modelpilot.domain.commands import PromoteModel, RollbackModel
from modelpilot.exceptions import ConcurrencyConflict
from modelpilot.policy import parse_policy
from modelpilot.service.lifecycle import CAS_ATTEMPTS, promote_model, rollback_model
from modelpilot.testing import InMemoryRegistry, fake_services
from tests.support.builders import T0, change, entry, manifest

POLICY = parse_policy({"environments": ["dev", "prod"]})


class RacingRegistry(InMemoryRegistry):
    """Before each of the first ``races`` compare-and-sets, a rival moves the alias (so that one loses)."""

    def __init__(self, races: int, rival_targets: list[int]) -> None:
        super().__init__()
        self.races = races
        self.rival_targets = rival_targets
        self.attempts: list[tuple[int, int]] = []

    def move_alias(self, *, change, expected_revision, audit):
        self.attempts.append((expected_revision, change.to_version))
        if len(self.attempts) <= self.races:
            target = self.rival_targets[(len(self.attempts) - 1) % len(self.rival_targets)]
            rival_move(self, change.environment, target)
        return super().move_alias(change=change, expected_revision=expected_revision, audit=audit)


def rival_move(registry: InMemoryRegistry, env: str, to: int, action: str = "promote") -> None:
    alias = registry.get_alias("churn", env)
    revision = alias.revision if alias else 0
    move = change("churn", env, revision + 1, alias.version if alias else None, to, action=action)
    InMemoryRegistry.move_alias(
        registry, change=move, expected_revision=revision, audit=entry(action=action, actor="rival")
    )


def setup(registry: InMemoryRegistry, env: str, live: list[int]):
    for n in (1, 2, 3):
        registry.register_version(
            manifest=manifest(seed=str(n)),
            manifest_digest=f"d{n}",
            package_uri=f"mem://pkg/{n}",
            registered_by="alice",
            registered_at=T0,
            source="upload",
            external_id=None,
            status="registered",
            audit=entry(action="register"),
        )
    for version in live:
        rival_move(registry, env, version)
    return fake_services(POLICY, registry=registry)


def ours(registry: InMemoryRegistry, env: str):
    return [c for c in registry.alias_history("churn", env) if c.actor == "alice"]


def test_a_lost_race_is_decided_again_on_the_new_state():
    registry = RacingRegistry(races=1, rival_targets=[2])
    svc = setup(registry, "dev", live=[1])
    outcome = promote_model(PromoteModel(model="churn", environment="dev", actor="alice", version=3), svc)
    assert (outcome.status, outcome.data["from_version"], outcome.data["revision"]) == ("promoted", 2, 3)
    assert registry.attempts == [(1, 3), (2, 3)]  # re-read: the second try expects the rival's revision
    [move] = ours(registry, "dev")
    assert (move.revision, move.from_version, move.to_version) == (3, 2, 3)
    assert [e.from_version for e in outcome.events] == [2]


def test_promotion_gives_up_after_cas_attempts_and_writes_nothing():
    registry = RacingRegistry(races=CAS_ATTEMPTS, rival_targets=[2, 1])
    svc = setup(registry, "dev", live=[1])
    audit_before = len(registry.audit_records("churn"))
    with pytest.raises(ConcurrencyConflict, match="churn dev kept moving"):
        promote_model(PromoteModel(model="churn", environment="dev", actor="alice", version=3), svc)
    assert len(registry.attempts) == CAS_ATTEMPTS
    assert ours(registry, "dev") == []
    assert {r.actor for r in registry.audit_records("churn")[audit_before:]} == {"rival"}


def test_one_race_fewer_than_the_limit_still_commits():
    registry = RacingRegistry(races=CAS_ATTEMPTS - 1, rival_targets=[2, 1])
    svc = setup(registry, "dev", live=[1])
    outcome = promote_model(PromoteModel(model="churn", environment="dev", actor="alice", version=3), svc)
    assert outcome.status == "promoted" and outcome.data["revision"] == CAS_ATTEMPTS + 1
    assert len(registry.attempts) == CAS_ATTEMPTS


def test_a_rollback_that_lost_to_a_rival_rollback_becomes_a_noop():
    registry = RacingRegistry(races=1, rival_targets=[1])
    svc = setup(registry, "prod", live=[1, 2])
    command = RollbackModel(model="churn", environment="prod", actor="alice", reason="slo", from_version=2)
    outcome = rollback_model(command, svc)
    assert outcome.status == "noop" and outcome.events == []
    assert "no longer runs v2 (it runs v1)" in outcome.message
    assert registry.attempts == [(2, 1)]
    assert ours(registry, "prod") == []


def test_rollback_gives_up_after_cas_attempts():
    registry = RacingRegistry(races=CAS_ATTEMPTS, rival_targets=[3, 2])
    svc = setup(registry, "prod", live=[1, 2])
    with pytest.raises(ConcurrencyConflict, match="churn prod kept moving"):
        rollback_model(RollbackModel(model="churn", environment="prod", actor="alice", reason="manual"), svc)
    assert len(registry.attempts) == CAS_ATTEMPTS
    assert ours(registry, "prod") == []
