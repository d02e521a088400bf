"""Command handlers of the registry lifecycle: register, promote, approve, reject, roll back.

Each handler takes a command and the :class:`Services`, makes the decision, changes
state through the registry port (state change + audit record in one transaction)
and returns an :class:`Outcome` with the events it produced. Handlers are
idempotent: the same command twice changes state once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelpilot import telemetry
from modelpilot.domain import identity
from modelpilot.domain.audit import AuditEntry
from modelpilot.domain.commands import PromoteModel, RejectModel
from modelpilot.domain.events import (
    ModelApproved,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    ModelRolledBack,
    PromotionBlocked,
    RollbackSkipped,
)
from modelpilot.domain.gates import GateContext, evaluate_gates
from modelpilot.domain.model import AliasChange, Approval, MonitorStatus
from modelpilot.domain.rollback import select_rollback_target
from modelpilot.exceptions import ConcurrencyConflict, InvalidInput, UnknownModel, UnknownVersion
from modelpilot.service import authz, canary, serving
from modelpilot.service.messagebus import Outcome

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from modelpilot.domain.commands import (
        ApproveModel,
        RecordMonitorStatus,
        RegisterModel,
        RollbackModel,
    )
    from modelpilot.domain.model import Alias, ModelVersion
    from modelpilot.policy import Policy
    from modelpilot.ports import RegistryStore
    from modelpilot.service.messagebus import Services

__all__ = [
    "SYSTEM_PREFIX",
    "approve_model",
    "promote_model",
    "record_monitor_status",
    "register_model",
    "reject_model",
    "rollback_model",
]

#: actors starting with this prefix are ModelPilot's own automation (triggers, monitors)
SYSTEM_PREFIX = identity.SYSTEM_PREFIX
CAS_ATTEMPTS = 5


def _require_model(registry: RegistryStore, model: str) -> None:
    if model not in registry.list_models():
        raise UnknownModel(f"unknown model {model!r}: register a version first", model=model)


# -- register ---------------------------------------------------------------------
def register_model(cmd: RegisterModel, svc: Services) -> Outcome:
    """Verify the package, then store a new version (or return the existing one)."""
    if cmd.status not in {"registered", "pending_approval", "rejected"}:
        raise InvalidInput(f"invalid initial status {cmd.status!r}")
    # the policy is read before anything changes: a broken one (PolicyError) fails the event whole
    first = svc.policy.environments[0] if cmd.auto_promote else None
    from modelpilot.package.manifest import load_package, manifest_digest  # pydantic: only the register path pays

    root, manifest = load_package(svc.artifacts, cmd.package_uri)
    digest = manifest_digest(manifest)
    existing = svc.registry.find_version(manifest.name, manifest_digest=digest)
    if existing is not None and existing.status == "pending_approval" and cmd.status == "registered":
        # the source registry (SageMaker) approved a version registered while it awaited approval
        svc.registry.set_version_status(
            manifest.name,
            existing.version,
            "registered",
            AuditEntry(
                model=manifest.name,
                actor=cmd.actor,
                action="source_approve",
                timestamp=svc.clock(),
                to_version=existing.version,
                reason=f"approved in {cmd.source}",
                trigger=cmd.trigger,
            ),
        )
        outcome = Outcome(
            "approved_in_source",
            f"{manifest.name} v{existing.version} approved in {cmd.source}",
            {"model": manifest.name, "version": existing.version, "manifest_digest": digest},
        )
    elif existing is not None:
        outcome = Outcome(
            "unchanged",
            f"{manifest.name} v{existing.version} is already registered with this manifest",
            {"model": manifest.name, "version": existing.version, "manifest_digest": digest},
        )
        if cmd.status == "rejected":
            # the source registry (SageMaker) rejected a version ModelPilot already holds: reject it here too
            rejected = reject_model(
                RejectModel(
                    model=manifest.name,
                    version=existing.version,
                    actor=cmd.actor,
                    reason=f"rejected in {cmd.source}" + (f" ({cmd.external_id})" if cmd.external_id else ""),
                    trigger=cmd.trigger,
                ),
                svc,
            )
            outcome.follow_ups.append(rejected)
            outcome.events.extend(rejected.events)
    else:
        now = svc.clock()
        version, created = svc.registry.register_version(
            manifest=manifest,
            manifest_digest=digest,
            package_uri=root,
            registered_by=cmd.actor,
            registered_at=now,
            source=cmd.source,
            external_id=cmd.external_id,
            status=cmd.status,
            audit=AuditEntry(
                model=manifest.name,
                actor=cmd.actor,
                action="register",
                timestamp=now,
                reason=f"registered from {root}",
                trigger=cmd.trigger,
                evidence={
                    "manifest_digest": digest,
                    "source": cmd.source,
                    "status": cmd.status,  # the outbox's ModelRegistered carries it
                    **telemetry.trace_evidence(),
                },
            ),
        )
        if not created:
            outcome = Outcome(
                "unchanged",
                f"{manifest.name} v{version.version} is already registered",
                {"model": manifest.name, "version": version.version, "manifest_digest": digest},
            )
        else:
            telemetry.counter_add("modelpilot.registrations", 1, {"model": manifest.name, "source": cmd.source})
            outcome = Outcome(
                "registered",
                f"{manifest.name} v{version.version} registered",
                {"model": manifest.name, "version": version.version, "manifest_digest": digest},
                [ModelRegistered(manifest.name, version.version, digest, cmd.actor, version.status)],
            )
    if first is not None and outcome.data.get("version"):
        number = int(outcome.data["version"])
        if outcome.status == "unchanged" and _ever_in(svc.registry, manifest.name, first, number):
            # a copy of a package already registered (a re-upload, a late or replayed event): nothing moves
            outcome.data["promotion"] = {
                "status": "unchanged",
                "message": f"{manifest.name} v{number} was already promoted to {first} once; "
                "a repeated upload does not promote it again",
            }
            return outcome
        promoted = _promote(
            PromoteModel(
                model=manifest.name,
                environment=first,
                actor=cmd.actor,
                version=number,
                reason="auto-promotion on upload",
                trigger=cmd.trigger,
            ),
            svc,
            forward_only=True,
        )
        outcome.data["promotion"] = promoted.to_dict()
        outcome.events.extend(promoted.events)
    return outcome


def _ever_in(registry: RegistryStore, model: str, environment: str, version: int) -> bool:
    """True when ``version`` ever entered ``environment`` (it is in the alias's history as a target)."""
    return any(change.to_version == version for change in registry.alias_history(model, environment))


# -- promote ----------------------------------------------------------------------
@dataclass(frozen=True)
class _AliasMove:
    """A decided alias move: the change and its audit record, and the outcome to report once it committed."""

    change: AliasChange
    audit: AuditEntry
    done: Callable[[Alias], Outcome]


def _compare_and_set(
    registry: RegistryStore, model: str, environment: str, decide: Callable[[], Outcome | _AliasMove]
) -> Outcome:
    """Read and decide, then try the move; on ``ConcurrencyConflict`` read and decide again.

    ``decide`` reads the current state and returns either the outcome when nothing
    is to move or the :class:`_AliasMove` to compare-and-set against the revision it
    read. After ``CAS_ATTEMPTS`` lost races, raises ``ConcurrencyConflict``
    (retryable: the platform tries the whole command again).
    """
    for _attempt in range(CAS_ATTEMPTS):
        decision = decide()
        if isinstance(decision, Outcome):
            return decision
        try:
            moved = registry.move_alias(
                change=decision.change, expected_revision=decision.change.revision - 1, audit=decision.audit
            )
        except ConcurrencyConflict:
            continue
        return decision.done(moved)
    raise ConcurrencyConflict(f"{model} {environment} kept moving; try again", model=model)


def _pick_candidate(cmd: PromoteModel, svc: Services, previous: str | None) -> ModelVersion:
    registry = svc.registry
    if cmd.version is not None:
        return registry.get_version(cmd.model, cmd.version)
    if previous is not None:
        alias = registry.get_alias(cmd.model, previous)
        if alias is None:
            raise InvalidInput(f"{cmd.model} has nothing in {previous} to promote; name a version", model=cmd.model)
        return registry.get_version(cmd.model, alias.version)
    versions = registry.list_versions(cmd.model)
    if not versions:
        raise UnknownModel(f"unknown model {cmd.model!r}: register a version first", model=cmd.model)
    return versions[-1]


def _entered_at(registry: RegistryStore, model: str, environment: str, version: int) -> datetime | None:
    """Return when ``version`` last entered ``environment``, or None when it is not there now."""
    alias = registry.get_alias(model, environment)
    if alias is None or alias.version != version:
        return None
    history = registry.alias_history(model, environment)
    return history[-1].at if history else alias.updated_at


def promote_model(cmd: PromoteModel, svc: Services) -> Outcome:
    """Evaluate the gates and, when all pass, move the alias (CAS) with its audit record."""
    return _promote(cmd, svc, forward_only=False)


def _promote(cmd: PromoteModel, svc: Services, *, forward_only: bool) -> Outcome:
    """Promote; with ``forward_only`` (an automatic promotion) never onto a version older than the alias holds.

    The check is made on the alias as read inside the compare-and-set loop, so when two automatic
    promotions race (v3's upload and v4's on two workers), the one that loses and re-reads finds the
    newer version in place and leaves it there.
    """
    policy = svc.policy
    policy.check_environment(cmd.environment)
    _require_model(svc.registry, cmd.model)
    authz.authorize(svc, cmd.actor, "promote", cmd.model, cmd.environment, version=cmd.version, trigger=cmd.trigger)
    previous = policy.previous_environment(cmd.environment)
    return _compare_and_set(
        svc.registry,
        cmd.model,
        cmd.environment,
        lambda: _decide_promotion(cmd, svc, policy, previous, forward_only=forward_only),
    )


def _decide_promotion(
    cmd: PromoteModel, svc: Services, policy: Policy, previous: str | None, *, forward_only: bool = False
) -> Outcome | _AliasMove:
    """Read the alias and evaluate the gates: the outcome when nothing moves, else the move to try."""
    registry = svc.registry
    candidate = _pick_candidate(cmd, svc, previous)
    alias = registry.get_alias(cmd.model, cmd.environment)
    if cmd.from_version is not None and (alias.version if alias else None) != cmd.from_version:
        running = f"it runs v{alias.version}" if alias else "it runs nothing"
        return Outcome(
            "noop",
            f"{cmd.environment} no longer runs v{cmd.from_version} ({running}); nothing promoted",
            {"model": cmd.model, "environment": cmd.environment, "version": alias.version if alias else None},
        )
    if forward_only and alias is not None and alias.version > candidate.version:
        return Outcome(
            "skipped",
            f"{cmd.environment} already runs {cmd.model} v{alias.version}, newer than v{candidate.version}: "
            "an automatic promotion never moves an alias back",
            {
                "model": cmd.model,
                "environment": cmd.environment,
                "version": alias.version,
                "candidate": candidate.version,
                "revision": alias.revision,
            },
        )
    if alias is not None and alias.version == candidate.version:
        return Outcome(
            "unchanged",
            f"{cmd.model} v{candidate.version} is already in {cmd.environment}",
            {
                "model": cmd.model,
                "environment": cmd.environment,
                "version": candidate.version,
                "revision": alias.revision,
            },
        )
    if cmd.trigger and any(c.trigger == cmd.trigger for c in registry.alias_history(cmd.model, cmd.environment)):
        return Outcome(
            "unchanged",
            f"trigger {cmd.trigger} was already applied to {cmd.model} {cmd.environment}",
            {"model": cmd.model, "environment": cmd.environment},
        )
    pending = canary.active_conflict(svc, cmd.model, cmd.environment, candidate.version)
    if pending is not None:  # this version's canary runs there already (a duplicate request)
        return pending
    now = svc.clock()
    ctx = GateContext(
        candidate=candidate,
        environment=cmd.environment,
        now=now,
        previous_environment=previous,
        in_previous_since=_entered_at(registry, cmd.model, previous, candidate.version) if previous else None,
        incumbent=registry.get_version(cmd.model, alias.version) if alias else None,
        approvals=registry.list_approvals(cmd.model, candidate.version, cmd.environment),
        drift_status=registry.get_monitor_status(cmd.model, previous, "drift") if previous else None,
        slo_status=registry.get_monitor_status(cmd.model, previous, "slo") if previous else None,
        quality_status=registry.get_monitor_status(cmd.model, previous, "quality") if previous else None,
    )
    report = evaluate_gates(policy.gates_for(cmd.model, cmd.environment), ctx)
    data = {
        "model": cmd.model,
        "environment": cmd.environment,
        "version": candidate.version,
        "from_version": alias.version if alias else None,
        "gate_report": report.to_dict(),
        "gate_report_digest": report.digest(),
    }
    if not report.passed:
        telemetry.counter_add("modelpilot.promotions.blocked", 1, {"model": cmd.model, "environment": cmd.environment})
        failures = report.failures
        return Outcome(
            "blocked",
            f"promotion of {cmd.model} v{candidate.version} to {cmd.environment} blocked: "
            + "; ".join(f.reason for f in failures),
            data,
            [
                PromotionBlocked(
                    cmd.model,
                    cmd.environment,
                    candidate.version,
                    cmd.actor,
                    [f.gate for f in failures],
                    [f.reason for f in failures],
                    report.digest(),
                )
            ],
        )
    canary_policy = policy.gates_for(cmd.model, cmd.environment).canary
    if cmd.dry_run:
        how = " as a canary" if canary_policy is not None and alias is not None else ""
        return Outcome("dry_run", f"{cmd.model} v{candidate.version} would be promoted to {cmd.environment}{how}", data)
    if (
        canary_policy is not None and alias is not None
    ):  # the first version into an environment has nothing to compare with
        return canary.start_canary(cmd, svc, alias, candidate.version, canary_policy, data)
    expected = alias.revision if alias else 0
    change = AliasChange(
        model=cmd.model,
        environment=cmd.environment,
        revision=expected + 1,
        from_version=alias.version if alias else None,
        to_version=candidate.version,
        action="promote",
        actor=cmd.actor,
        reason=cmd.reason or "promotion",
        at=now,
        trigger=cmd.trigger,
    )
    audit = AuditEntry(
        model=cmd.model,
        actor=cmd.actor,
        action="promote",
        timestamp=now,
        environment=cmd.environment,
        from_version=change.from_version,
        to_version=candidate.version,
        reason=change.reason,
        gate_report_digest=report.digest(),
        trigger=cmd.trigger,
        evidence={
            "revision": change.revision,
            "gates": {r.gate: r.status for r in report.results},
            **telemetry.trace_evidence(),
        },
    )

    def promoted(moved: Alias) -> Outcome:
        telemetry.counter_add("modelpilot.promotions", 1, {"model": cmd.model, "environment": cmd.environment})
        data["revision"] = moved.revision
        data.update(serving.publish(svc, cmd.model, cmd.environment))
        return Outcome(
            "promoted",
            f"{cmd.model} v{candidate.version} promoted to {cmd.environment} (revision {moved.revision})",
            data,
            [
                ModelPromoted(
                    cmd.model,
                    cmd.environment,
                    candidate.version,
                    change.from_version,
                    moved.revision,
                    cmd.actor,
                    report.digest(),
                )
            ],
        )

    return _AliasMove(change, audit, promoted)


# -- approve / reject -------------------------------------------------------------
def approve_model(cmd: ApproveModel, svc: Services) -> Outcome:
    """Record an approval; the registrant cannot approve their own version (four-eyes)."""
    policy = svc.policy
    policy.check_environment(cmd.environment)
    version = svc.registry.get_version(cmd.model, cmd.version)
    gates = policy.gates_for(cmd.model, cmd.environment)
    authz.authorize_approval(svc, cmd.approver, version, cmd.environment, gates, cmd.trigger)
    now = svc.clock()
    added = svc.registry.add_approval(
        Approval(cmd.model, cmd.version, cmd.environment, identity.canonical(cmd.approver), now, cmd.comment),
        AuditEntry(
            model=cmd.model,
            actor=cmd.approver,
            action="approve",
            timestamp=now,
            environment=cmd.environment,
            to_version=cmd.version,
            reason=cmd.comment,
            trigger=cmd.trigger,
        ),
    )
    data = {"model": cmd.model, "version": cmd.version, "environment": cmd.environment, "approver": cmd.approver}
    if not added:
        return Outcome(
            "unchanged", f"{cmd.approver} already approved {cmd.model} v{cmd.version} for {cmd.environment}", data
        )
    return Outcome(
        "approved",
        f"{cmd.approver} approved {cmd.model} v{cmd.version} for {cmd.environment}",
        data,
        [ModelApproved(cmd.model, cmd.version, cmd.environment, cmd.approver)],
    )


def reject_model(cmd: RejectModel, svc: Services) -> Outcome:
    """Mark a version rejected so no gate lets it through."""
    svc.registry.get_version(cmd.model, cmd.version)
    authz.authorize(svc, cmd.actor, "reject", cmd.model, version=cmd.version, trigger=cmd.trigger)
    now = svc.clock()
    changed = svc.registry.set_version_status(
        cmd.model,
        cmd.version,
        "rejected",
        AuditEntry(
            model=cmd.model,
            actor=cmd.actor,
            action="reject",
            timestamp=now,
            to_version=cmd.version,
            reason=cmd.reason,
            trigger=cmd.trigger,
        ),
    )
    data = {"model": cmd.model, "version": cmd.version}
    if not changed:
        return Outcome("unchanged", f"{cmd.model} v{cmd.version} is already rejected", data)
    return Outcome(
        "rejected",
        f"{cmd.model} v{cmd.version} rejected",
        data,
        [ModelRejected(cmd.model, cmd.version, cmd.actor, cmd.reason)],
    )


# -- rollback ---------------------------------------------------------------------
def _excluded_versions(svc: Services, model: str, environment: str) -> set[int]:
    excluded = {v.version for v in svc.registry.list_versions(model) if v.status == "rejected"}
    for status in svc.registry.list_monitor_status(model):
        if status.environment == environment and status.state == "alert" and status.version is not None:
            excluded.add(status.version)
    return excluded


def rollback_model(cmd: RollbackModel, svc: Services) -> Outcome:
    """Move the alias back to the last healthy version (or ``to_version``), once."""
    policy = svc.policy
    policy.check_environment(cmd.environment)
    _require_model(svc.registry, cmd.model)
    authz.authorize(svc, cmd.actor, "rollback", cmd.model, cmd.environment, trigger=cmd.trigger)
    return _compare_and_set(svc.registry, cmd.model, cmd.environment, lambda: _decide_rollback(cmd, svc))


def _decide_rollback(cmd: RollbackModel, svc: Services) -> Outcome | _AliasMove:
    """Read the alias and pick the target: the outcome when nothing moves, else the move to try."""
    registry = svc.registry
    alias = registry.get_alias(cmd.model, cmd.environment)
    base = {"model": cmd.model, "environment": cmd.environment}
    if alias is None:
        return _skip(cmd, f"{cmd.model} has no version in {cmd.environment}", base)
    history = registry.alias_history(cmd.model, cmd.environment)
    if cmd.trigger and any(c.trigger == cmd.trigger for c in history):
        return _skip(cmd, f"trigger {cmd.trigger} was already applied", {**base, "version": alias.version}, event=False)
    if cmd.from_version is not None and alias.version != cmd.from_version:
        return _skip(
            cmd,
            f"{cmd.environment} no longer runs v{cmd.from_version} (it runs v{alias.version}); nothing to roll back",
            {**base, "version": alias.version},
            event=False,
        )
    if cmd.to_version is not None:
        target = registry.get_version(cmd.model, cmd.to_version)
        if target.status == "rejected":
            raise InvalidInput(f"{cmd.model} v{cmd.to_version} was rejected; choose another version")
        if cmd.to_version == alias.version:
            return _skip(
                cmd, f"{cmd.environment} already runs v{alias.version}", {**base, "version": alias.version}, event=False
            )
        to_version: int | None = cmd.to_version
    else:
        to_version = select_rollback_target(
            history, alias.version, excluded=_excluded_versions(svc, cmd.model, cmd.environment)
        )
    if to_version is None:
        return _skip(
            cmd,
            f"no earlier healthy version of {cmd.model} in {cmd.environment} to roll back to",
            {**base, "version": alias.version},
        )
    now = svc.clock()
    change = AliasChange(
        model=cmd.model,
        environment=cmd.environment,
        revision=alias.revision + 1,
        from_version=alias.version,
        to_version=to_version,
        action="rollback",
        actor=cmd.actor,
        reason=cmd.reason,
        at=now,
        trigger=cmd.trigger,
    )
    audit = AuditEntry(
        model=cmd.model,
        actor=cmd.actor,
        action="rollback",
        timestamp=now,
        environment=cmd.environment,
        from_version=alias.version,
        to_version=to_version,
        reason=cmd.reason,
        trigger=cmd.trigger,
        evidence={"revision": change.revision, **cmd.evidence, **telemetry.trace_evidence()},
    )

    def rolled_back(moved: Alias) -> Outcome:
        telemetry.counter_add("modelpilot.rollbacks", 1, {"model": cmd.model, "environment": cmd.environment})
        # a canary over the version rolled back from is over: the split follows the alias again
        ended = canary.abort_after_alias_move(svc, cmd.model, cmd.environment, cmd.actor, cmd.reason, cmd.trigger)
        published = serving.publish(svc, cmd.model, cmd.environment)
        return Outcome(
            "rolled_back",
            f"{cmd.model} {cmd.environment} rolled back v{change.from_version} -> v{change.to_version} "
            f"(revision {moved.revision})",
            {
                **base,
                "from_version": change.from_version,
                "version": change.to_version,
                "revision": moved.revision,
                **published,
            },
            [
                ModelRolledBack(
                    cmd.model,
                    cmd.environment,
                    alias.version,
                    change.to_version,
                    moved.revision,
                    cmd.actor,
                    cmd.reason,
                    cmd.trigger,
                    dict(cmd.evidence),
                ),
                *ended,
            ],
        )

    return _AliasMove(change, audit, rolled_back)


def _skip(cmd: RollbackModel, message: str, data: Mapping[str, object], *, event: bool = True) -> Outcome:
    events = [RollbackSkipped(cmd.model, cmd.environment, cmd.actor, message)] if event else []
    return Outcome("noop", message, dict(data), list(events))


# -- monitors ---------------------------------------------------------------------
def record_monitor_status(cmd: RecordMonitorStatus, svc: Services) -> Outcome:
    """Store a monitor verdict for the promotion gates."""
    if cmd.kind not in {"drift", "slo", "quality"} or cmd.state not in {"ok", "alert"}:
        raise InvalidInput("monitor status needs kind drift|slo|quality and state ok|alert")
    svc.policy.check_environment(cmd.environment)
    if cmd.version is not None:
        try:
            svc.registry.get_version(cmd.model, cmd.version)
        except UnknownVersion:
            raise
    svc.registry.put_monitor_status(
        MonitorStatus(
            cmd.model,
            cmd.environment,
            cmd.kind,
            cmd.state,
            cmd.version,
            svc.clock(),
            cmd.summary,
            dict(cmd.details),
        )
    )
    return Outcome(
        "recorded",
        f"{cmd.kind} status of {cmd.model} {cmd.environment}: {cmd.state}",
        {"model": cmd.model, "environment": cmd.environment, "kind": cmd.kind, "state": cmd.state},
    )
