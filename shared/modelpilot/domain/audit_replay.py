"""Replay a model's audit chain and compare what it says with the registry's state.

Every state change appends its audit record in the same transaction, so a chain
that verifies fixes what the state must be: which versions exist (with which
manifest digest), which are rejected, every alias move (and so each alias and
its history), every approval, and each environment's canary (the state, weight, step,
revision, failures and versions of its last canary record; the steps of its start record).
:func:`state_mismatches` names each place where the stored state says otherwise: a row
edited, added or deleted outside ModelPilot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelpilot.domain.identity import canonical

if TYPE_CHECKING:
    from modelpilot.domain.audit import AuditRecord
    from modelpilot.domain.canary import Canary
    from modelpilot.domain.model import Alias, AliasChange, Approval, ModelVersion

__all__ = ["ObservedState", "environments_in", "state_mismatches"]

_MOVES = ("promote", "rollback")


@dataclass(frozen=True)
class ObservedState:
    """What the registry holds for one model, read for the comparison."""

    versions: list[ModelVersion]
    aliases: dict[str, Alias | None] = field(default_factory=dict)
    history: dict[str, list[AliasChange]] = field(default_factory=dict)
    approvals: list[Approval] = field(default_factory=list)
    #: each environment's stored canary (None: no row)
    canaries: dict[str, Canary | None] = field(default_factory=dict)
    #: the environments the store lists as having an active canary (its state index, read apart from the rows)
    active_canaries: frozenset[str] = frozenset()


def environments_in(records: list[AuditRecord]) -> set[str]:
    """Return every environment a record names."""
    return {r.environment for r in records if r.environment}


def state_mismatches(records: list[AuditRecord], state: ObservedState) -> list[str]:
    """Return one sentence per disagreement between the chain's replay and ``state`` (empty: they agree)."""
    problems = _version_mismatches(records, state.versions)
    envs = sorted(environments_in(records) | set(state.aliases) | set(state.history))
    for env in envs:
        problems += _alias_mismatches(env, [r for r in records if r.action in _MOVES and r.environment == env], state)
    for env in sorted(environments_in(records) | set(state.canaries)):
        problems += _canary_mismatches(env, [r for r in records if _is_canary(r) and r.environment == env], state)
    expected: set[tuple[int | None, str | None, str]] = {
        (r.to_version, r.environment, canonical(r.actor)) for r in records if r.action == "approve"
    }
    # approvals are stored under the canonical identity and audited as given: compare canonical forms
    found: set[tuple[int | None, str | None, str]] = {
        (a.version, a.environment, canonical(a.approver)) for a in state.approvals
    }
    for version, where, who in sorted(expected - found, key=str):
        problems.append(f"approval of v{version} for {where} by {who} is in the audit but missing from the state")
    for version, where, who in sorted(found - expected, key=str):
        problems.append(f"approval of v{version} for {where} by {who} is in the state but not in the audit")
    return problems


def _version_mismatches(records: list[AuditRecord], versions: list[ModelVersion]) -> list[str]:
    registered = {
        r.to_version: str(r.evidence.get("manifest_digest", ""))
        for r in records
        if r.action == "register" and r.to_version is not None
    }
    rejected = {r.to_version for r in records if r.action == "reject"}
    stored = {v.version: v for v in versions}
    problems: list[str] = []
    missing = sorted(v for v in registered if v not in stored)
    if missing:
        problems.append(f"version rows deleted: {_vs(missing)} registered in the audit, missing from the state")
    extra = sorted(v for v in stored if v not in registered)
    if extra:
        problems.append(f"versions {_vs(extra)} are in the state but no audit record registered them")
    for number, version in sorted(stored.items()):
        digest = registered.get(number)
        if digest and digest != version.manifest_digest:
            problems.append(f"v{number}'s manifest digest differs from its register record")
        if number in rejected and version.status != "rejected":
            problems.append(f"v{number} is {version.status!r} in the state but the audit rejected it")
    return problems


def _alias_mismatches(env: str, moves: list[AuditRecord], state: ObservedState) -> list[str]:
    alias = state.aliases.get(env)
    history = state.history.get(env, [])
    problems: list[str] = []
    want = (moves[-1].to_version or 0, len(moves)) if moves else None
    have = (alias.version, alias.revision) if alias else None
    if want != have:
        problems.append(f"alias {env} is {_at(have)} in the state but the audit replays to {_at(want)} (alias edited)")
    if len(history) != len(moves):
        problems.append(f"alias {env} history has {len(history)} move(s); the audit records {len(moves)}")
    for revision, (move, change) in enumerate(zip(moves, history, strict=False), start=1):
        stored = (change.revision, change.from_version, change.to_version, change.action, change.actor)
        if stored != (revision, move.from_version, move.to_version, move.action, move.actor):
            problems.append(f"alias {env} history revision {revision} differs from audit record #{move.seq}")
    return problems


def _is_canary(record: AuditRecord) -> bool:
    return record.action.startswith("canary_") and isinstance(record.evidence.get("canary"), dict)


def _canary_mismatches(env: str, saves: list[AuditRecord], state: ObservedState) -> list[str]:
    """The stored canary must be what its last save recorded (every save writes its record in one transaction)."""
    stored = state.canaries.get(env)
    if not saves:
        return [f"canary {env} is in the state but no audit record saved it"] if stored is not None else []
    last = saves[-1].evidence["canary"]
    if stored is None:
        return [f"canary {env} was saved in audit record #{saves[-1].seq} but is missing from the state (deleted)"]
    want = {k: last.get(k) for k in _CANARY_FIELDS}
    have = {k: getattr(stored, k) for k in _CANARY_FIELDS}
    problems = [
        f"canary {env} has {k} {have[k]!r} in the state but the audit replays to {want[k]!r} (canary edited)"
        for k in _CANARY_FIELDS
        if want[k] is not None and want[k] != have[k]
    ]
    starts = [r for r in saves if r.action == "canary_start" and isinstance(r.evidence.get("steps"), list)]
    if starts and stored.steps and tuple(starts[-1].evidence["steps"]) != stored.steps:
        problems.append(
            f"canary {env} steps {list(stored.steps)} differ from {starts[-1].evidence['steps']} "
            f"recorded at its start (record #{starts[-1].seq}; canary edited)"
        )
    if (env in state.active_canaries) != stored.active:
        listed = "lists it as active" if env in state.active_canaries else "does not list it as active"
        problems.append(f"canary {env} is {stored.state} but the store {listed} (its state index was edited)")
    return problems


#: what a canary save records and the replay compares
_CANARY_FIELDS = ("state", "weight", "step", "revision", "failures", "stable_version", "candidate_version")


def _vs(numbers: list[int]) -> str:
    return ", ".join(f"v{n}" for n in numbers)


def _at(pair: tuple[int, int] | None) -> str:
    return "unset" if pair is None else f"v{pair[0]} at revision {pair[1]}"
