"""The saved changes of a canary: each one compare-and-set with its audit record, then the manifest and routes.

Used by :mod:`modelpilot.service.canary`; the endings (abort, promotion through an ordinary alias move) and the
one save every change goes through live here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from modelpilot import telemetry
from modelpilot.domain.audit import AuditEntry
from modelpilot.domain.canary_events import CANARY_AUDIT_ACTIONS
from modelpilot.domain.events import ModelPromoted
from modelpilot.domain.model import AliasChange
from modelpilot.exceptions import ConcurrencyConflict
from modelpilot.ports import CanarySave
from modelpilot.service import serving
from modelpilot.service.messagebus import Outcome

if TYPE_CHECKING:
    from modelpilot.domain.canary import AnalysisResult, Canary
    from modelpilot.domain.events import Event
    from modelpilot.service.messagebus import Services

__all__ = ["CAS_ATTEMPTS", "abort", "abort_after_alias_move", "event", "finish_promoted", "report", "save"]

log = telemetry.get_logger("modelpilot.canary")
#: how often a change that lost a compare-and-set race is re-read and decided again
CAS_ATTEMPTS = 5


# -- endings ---------------------------------------------------------------------------
def abort_after_alias_move(
    svc: Services, model: str, environment: str, actor: str, reason: str, trigger: str | None
) -> list[Event]:
    """After a rollback moved ``environment``'s alias: abort its active canary (its stable version is gone)."""
    for _attempt in range(CAS_ATTEMPTS):
        current = svc.registry.get_canary(model, environment)
        if current is None or not current.active:
            return []
        try:
            return abort(svc, current, actor, f"rolled back: {reason}", trigger, None).events
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(f"the canary of {model} {environment} kept changing; try again", model=model)


def abort(
    svc: Services, canary: Canary, actor: str, reason: str, trigger: str | None, result: AnalysisResult | None
) -> Outcome:
    """Save ``canary`` as aborted (the candidate at 0 %), with the analysis that decided it, if any."""
    aborted = _ended(svc, canary, actor, "aborted", reason, result)
    saved = save(svc, aborted, canary.revision, "canary_abort", reason, trigger, analysis=result)
    telemetry.counter_add("modelpilot.canary.aborted", 1, {"model": canary.model, "environment": canary.environment})
    return report(
        svc,
        saved,
        "aborted",
        f"{canary.model} v{canary.candidate_version} canary in {canary.environment} aborted: {reason}",
        result,
        [event(saved, "canary_abort")],
    )


def finish_promoted(
    svc: Services, canary: Canary, actor: str, reason: str, trigger: str | None, result: AnalysisResult | None
) -> Outcome:
    """Move the alias to the candidate (an ordinary, audited alias move) and end the canary ``promoted``.

    Both are one transaction (:meth:`RegistryStore.move_alias` with the canary): an operator's abort that wins
    the race leaves the alias on the stable version, and a promotion that wins leaves no active canary behind.
    """
    events: list[Event] = []
    promoted = _ended(svc, canary, actor, "promoted", reason, result)
    ending = CanarySave(promoted, canary.revision, _audit(promoted, "canary_promote", reason, trigger, result))
    moved = _move_alias(svc, canary, actor, reason, trigger, ending)
    if moved is not None:
        events.append(moved)
        saved = promoted
    else:  # the alias already names the candidate: the canary's ending alone
        saved = svc.registry.save_canary(promoted, expected_revision=canary.revision, audit=ending.audit)
    telemetry.counter_add("modelpilot.canary.promoted", 1, {"model": canary.model, "environment": canary.environment})
    events.append(event(saved, "canary_promote"))
    return report(
        svc,
        saved,
        "promoted",
        f"{canary.model} v{canary.candidate_version} promoted to {canary.environment} after its canary ({reason})",
        result,
        events,
    )


def _ended(
    svc: Services,
    canary: Canary,
    actor: str,
    state: Literal["aborted", "promoted"],
    reason: str,
    result: AnalysisResult | None,
) -> Canary:
    """``canary`` ended in ``state`` (the candidate at 0 % aborted, at 100 % promoted), with the deciding analysis."""
    return canary.evolve(
        at=svc.clock(),
        by=actor,
        state=state,
        weight=100 if state == "promoted" else 0,
        reason=reason,
        last_analysis=result.to_dict() if result else canary.last_analysis,
    )


def _move_alias(
    svc: Services, canary: Canary, actor: str, reason: str, trigger: str | None, ending: CanarySave
) -> ModelPromoted | None:
    """Move the alias to the candidate with ``ending`` (both or neither); None when it is already there.

    A lost race on the alias alone (another move) reads it again; a lost race on the canary (an operator acted)
    raises ``ConcurrencyConflict`` for the caller to decide again from the canary it now holds.
    """
    registry = svc.registry
    for _attempt in range(CAS_ATTEMPTS):
        alias = registry.get_alias(canary.model, canary.environment)
        if alias is not None and alias.version == canary.candidate_version:
            return None
        now = svc.clock()
        revision = (alias.revision if alias else 0) + 1
        change = AliasChange(
            model=canary.model,
            environment=canary.environment,
            revision=revision,
            from_version=alias.version if alias else None,
            to_version=canary.candidate_version,
            action="promote",
            actor=actor,
            reason=f"canary: {reason}",
            at=now,
            trigger=trigger,
        )
        audit = AuditEntry(
            model=canary.model,
            actor=actor,
            action="promote",
            timestamp=now,
            environment=canary.environment,
            from_version=change.from_version,
            to_version=canary.candidate_version,
            reason=change.reason,
            gate_report_digest=canary.gate_report_digest or None,
            trigger=trigger,
            evidence={"revision": revision, "canary_revision": canary.revision, **telemetry.trace_evidence()},
        )
        try:
            moved = registry.move_alias(change=change, expected_revision=revision - 1, audit=audit, canary=ending)
        except ConcurrencyConflict:
            if registry.get_canary(canary.model, canary.environment) != canary:
                raise
            continue
        telemetry.counter_add("modelpilot.promotions", 1, {"model": canary.model, "environment": canary.environment})
        return ModelPromoted(
            canary.model,
            canary.environment,
            canary.candidate_version,
            change.from_version,
            moved.revision,
            actor,
            canary.gate_report_digest,
        )
    raise ConcurrencyConflict(f"{canary.model} {canary.environment} kept moving; try again", model=canary.model)


# -- plumbing -------------------------------------------------------------------------
def save(
    svc: Services,
    canary: Canary,
    expected: int,
    action: str,
    reason: str,
    trigger: str | None,
    *,
    analysis: AnalysisResult | None = None,
    extra: dict[str, Any] | None = None,
) -> Canary:
    """Compare-and-set ``canary`` with its audit record (the evidence: the split and the analysis)."""
    audit = _audit(canary, action, reason, trigger, analysis, extra)
    return svc.registry.save_canary(canary, expected_revision=expected, audit=audit)


def _audit(
    canary: Canary,
    action: str,
    reason: str,
    trigger: str | None,
    analysis: AnalysisResult | None,
    extra: dict[str, Any] | None = None,
) -> AuditEntry:
    """The audit record of saving ``canary`` after ``action``."""
    evidence: dict[str, Any] = {
        "canary": {
            "stable_version": canary.stable_version,
            "candidate_version": canary.candidate_version,
            "weight": canary.weight,
            "step": canary.step,
            "state": canary.state,
            "revision": canary.revision,
            "failures": canary.failures,
        },
        **(extra or {}),
        **telemetry.trace_evidence(),
    }
    if analysis is not None:
        evidence["analysis"] = analysis.to_dict()
    return AuditEntry(
        model=canary.model,
        actor=canary.updated_by,
        action=action,
        timestamp=canary.updated_at,
        environment=canary.environment,
        from_version=canary.stable_version,
        to_version=canary.candidate_version,
        reason=reason,
        gate_report_digest=canary.gate_report_digest or None,
        trigger=trigger,
        evidence=evidence,
    )


def event(canary: Canary, action: str) -> Event:
    """Return the event that announces ``canary`` after ``action`` (equal to the one the outbox rebuilds)."""
    cls = CANARY_AUDIT_ACTIONS[action]
    extra = {"action": action.removeprefix("canary_")} if action in ("canary_pause", "canary_resume") else {}
    return cls(
        canary.model,
        canary.environment,
        canary.stable_version,
        canary.candidate_version,
        canary.weight,
        canary.revision,
        canary.updated_by,
        canary.reason,
        **extra,
    )


def report(
    svc: Services, canary: Canary, status: Any, message: str, result: AnalysisResult | None, events: list[Event]
) -> Outcome:
    """Write the manifest, apply the routes, and return the outcome of a saved change."""
    published = serving.publish(svc, canary.model, canary.environment, canary)
    data: dict[str, Any] = {
        "model": canary.model,
        "environment": canary.environment,
        "version": canary.candidate_version,
        "canary": canary.to_dict(),
        **published,
    }
    if result is not None:
        data["analysis"] = result.to_dict()
    log.info("%s", message, extra={"modelpilot": {"model": canary.model, "environment": canary.environment}})
    return Outcome(status, message, data, events)
