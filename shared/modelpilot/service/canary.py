"""Canary promotions: start one, tick them (analysis, then advance / hold / fail / abort / promote), operate them.

* :func:`start_canary` is called by ``PromoteModel`` when the environment's policy has a
  ``canary`` block and the gates passed: the alias keeps the stable version and the
  candidate takes the first step's weight.
* :func:`advance_canaries` (``AdvanceCanaries``, the scheduler's tick) analyses every running
  canary whose step is due (``interval`` after the step started or after its last analysis)
  over ``[step_started_at, now]``. A passed analysis moves to the next step; reaching 100 %
  moves the alias to the candidate through an ordinary alias move (so ``ModelPromoted`` and
  the registry write-backs follow) and ends the canary ``promoted``. An inconclusive one
  holds; a failed one counts, and one failure more than ``failure_limit`` aborts (0 %).
* :func:`change_canary` (``ChangeCanary``): an operator pauses, resumes, aborts or promotes,
  optionally conditional on the revision they saw.

Every change is one compare-and-set of the canary with its audit record
(``RegistryStore.save_canary``); the outbox turns the records into events. All state is
in the store, so a restarted scheduler loses nothing, and a tick that finds nothing due
changes nothing (duplicate ticks are harmless). After each saved change the serving
manifest is written and the split applied to the traffic routers (:mod:`.serving`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.domain.canary import CANARY_ACTIONS, Canary
from modelpilot.domain.durations import format_duration
from modelpilot.exceptions import ConcurrencyConflict, Conflict, InvalidInput, NotFound, UnknownModel
from modelpilot.service import authz, serving
from modelpilot.service._canary_changes import (
    CAS_ATTEMPTS,
    abort,
    abort_after_alias_move,
    event,
    finish_promoted,
    report,
    save,
)
from modelpilot.service.canary_analysis import analyse, metric_spec
from modelpilot.service.messagebus import Outcome

if TYPE_CHECKING:
    from modelpilot.domain.canary import AnalysisResult
    from modelpilot.domain.commands import AdvanceCanaries, ChangeCanary, PromoteModel
    from modelpilot.domain.model import Alias
    from modelpilot.policy.canary import CanaryPolicy
    from modelpilot.service.messagebus import Services

__all__ = ["abort_after_alias_move", "active_conflict", "advance_canaries", "change_canary", "due_at", "start_canary"]


# -- start -------------------------------------------------------------------------
def active_conflict(svc: Services, model: str, environment: str, candidate: int) -> Outcome | None:
    """Before a promotion into ``environment``: "unchanged" when ``candidate``'s canary already runs there;
    raise ``Conflict`` when another version's canary is active (abort or promote it first)."""
    canary = svc.registry.get_canary(model, environment)
    if canary is None or not canary.active:
        return None
    if canary.candidate_version == candidate:
        return Outcome(
            "unchanged",
            f"{model} v{candidate} is already in a canary in {environment} ({canary.weight}%, {canary.state})",
            {"model": model, "environment": environment, "version": candidate, "canary": canary.to_dict()},
        )
    raise Conflict(
        f"a canary of {model} v{canary.candidate_version} is {canary.state} in {environment}; "
        f"abort or promote it before promoting v{candidate}",
        model=model,
        environment=environment,
    )


def start_canary(
    cmd: PromoteModel, svc: Services, alias: Alias, candidate: int, policy: CanaryPolicy, data: dict[str, Any]
) -> Outcome:
    """Start the canary of ``candidate`` over the alias's version (the gates passed; ``data`` is their report)."""
    registry = svc.registry
    previous = registry.get_canary(cmd.model, cmd.environment)
    if previous is not None and cmd.trigger and previous.trigger == cmd.trigger:
        return Outcome(
            "unchanged", f"trigger {cmd.trigger} already started a canary", {**data, "canary": previous.to_dict()}
        )
    unchanged = active_conflict(svc, cmd.model, cmd.environment, candidate)
    if unchanged is not None:
        return unchanged
    for metric in policy.metrics():  # an SLO the model does not define fails the promotion now, not every tick
        if metric.kind == "ratio":
            metric_spec(svc, cmd.model, cmd.environment, metric)
    now = svc.clock()
    canary = Canary(
        model=cmd.model,
        environment=cmd.environment,
        stable_version=alias.version,
        candidate_version=candidate,
        weight=policy.steps[0],
        step=0,
        state="running",
        revision=1,
        started_at=now,
        updated_at=now,
        updated_by=cmd.actor,
        step_started_at=now,
        reason=cmd.reason or "promotion",
        gate_report_digest=str(data.get("gate_report_digest") or ""),
        trigger=cmd.trigger,
        steps=tuple(policy.steps),
    )
    saved = save(svc, canary, 0, "canary_start", canary.reason, cmd.trigger, extra={"steps": policy.steps})
    telemetry.counter_add("modelpilot.canary.started", 1, {"model": cmd.model, "environment": cmd.environment})
    published = serving.publish(svc, cmd.model, cmd.environment, saved)
    return Outcome(
        "canary_started",
        f"{cmd.model} v{candidate} canary started in {cmd.environment}: {saved.weight}% "
        f"(stable v{alias.version}; steps {policy.steps}, every {format_duration(policy.interval)})",
        {**data, "canary": saved.to_dict(), **published},
        [event(saved, "canary_start")],
    )


# -- the tick ----------------------------------------------------------------------
def due_at(canary: Canary, interval: int) -> datetime:
    """When the current step's next analysis is due: ``interval`` after the step started or after its
    last analysis, whichever is later (so a duplicated tick finds nothing due)."""
    since = canary.step_started_at
    last = canary.last_analysis or {}
    if last.get("step") == canary.step and last.get("window_end"):
        since = max(since, datetime.fromisoformat(str(last["window_end"])))
    return since + timedelta(seconds=interval)


def advance_canaries(cmd: AdvanceCanaries, svc: Services) -> Outcome:
    """Analyse every due running canary (or the one ``cmd`` names), then advance, hold, fail, abort or promote it."""
    if cmd.environment is not None:
        svc.policy.check_environment(cmd.environment)
    results: list[Outcome] = []
    canaries = [
        c
        for c in svc.registry.list_canaries(active_only=False)
        if (cmd.model is None or c.model == cmd.model) and (cmd.environment is None or c.environment == cmd.environment)
    ]
    for canary in canaries:
        if canary.state == "running":
            outcome = _tick_one(svc, canary.model, canary.environment, cmd.actor, cmd.trigger)
            if outcome is not None:
                results.append(outcome)
                continue
        # nothing decided: apply the split again (a router that failed last time is repaired here)
        split = serving.current_split(svc, canary.model, canary.environment, canary)
        if split is not None and svc.traffic_routers:
            serving.apply_routers(svc, split)
    events = [e for r in results for e in r.events]
    changed = [r for r in results if r.changed]
    summary = ", ".join(r.message for r in results) or "nothing due"
    return Outcome(
        "checked" if changed else "unchanged",
        f"canary tick: {len([c for c in canaries if c.active])} active; {summary}",
        {"canaries": [r.to_dict() for r in results], "active": len([c for c in canaries if c.active])},
        events,
    )


def _tick_one(svc: Services, model: str, environment: str, actor: str, trigger: str | None) -> Outcome | None:
    """Decide one canary, retrying the compare-and-set when an operator acted meanwhile; None: nothing due."""
    for _attempt in range(CAS_ATTEMPTS):
        canary = svc.registry.get_canary(model, environment)
        if canary is None or canary.state != "running":
            return None
        try:
            return _decide_tick(svc, canary, actor, trigger)
        except ConcurrencyConflict:
            continue
    raise ConcurrencyConflict(f"the canary of {model} {environment} kept changing; the next tick tries again")


def _decide_tick(svc: Services, canary: Canary, actor: str, trigger: str | None) -> Outcome | None:
    now = svc.clock()
    policy = svc.policy.gates_for(canary.model, canary.environment).canary
    base = {"model": canary.model, "environment": canary.environment, "version": canary.candidate_version}
    if policy is None:
        return Outcome("noop", f"{canary.model} {canary.environment} has no canary policy any more; holding", base)
    alias = svc.registry.get_alias(canary.model, canary.environment)
    if alias is not None and alias.version == canary.candidate_version:  # the alias moved but the save was lost
        return finish_promoted(svc, canary, actor, "the alias already names the candidate", trigger, None)
    if alias is None or alias.version != canary.stable_version:
        running = f"v{alias.version}" if alias else "nothing"
        return abort(
            svc,
            canary,
            actor,
            f"{canary.environment} runs {running}, not the stable v{canary.stable_version}",
            trigger,
            None,
        )
    if now < due_at(canary, policy.interval):
        return None
    result = analyse(svc, canary, policy, canary.step_started_at, now)
    evidence = result.to_dict()
    if result.passed is None:
        held = canary.evolve(at=now, by=actor, last_analysis=evidence, reason="analysis inconclusive: holding")
        saved = save(svc, held, canary.revision, "canary_analysis", held.reason, trigger, analysis=result)
        return report(
            svc,
            saved,
            "held",
            f"{canary.model} {canary.environment} canary holds at {canary.weight}%: analysis inconclusive",
            result,
            [],
        )
    if result.passed is False:
        failures = canary.failures + 1
        if failures > policy.failure_limit:
            reason = (
                f"analysis failed {failures} time(s) at {canary.weight}% (limit {policy.failure_limit}): "
                + _failed(result)
            )
            return abort(svc, canary, actor, reason, trigger, result)
        failed = canary.evolve(at=now, by=actor, failures=failures, last_analysis=evidence, reason="analysis failed")
        saved = save(
            svc,
            failed,
            canary.revision,
            "canary_analysis",
            f"analysis failed ({failures}/{policy.failure_limit} tolerated): " + _failed(result),
            trigger,
            analysis=result,
        )
        return report(
            svc,
            saved,
            "analysis_failed",
            f"{canary.model} {canary.environment} canary analysis failed at {canary.weight}% "
            f"({failures} of {policy.failure_limit} tolerated)",
            result,
            [],
        )
    steps = canary.step_weights(policy.steps)
    nxt = canary.step + 1
    if nxt >= len(steps) or steps[nxt] >= 100:
        return finish_promoted(svc, canary, actor, f"analysis passed at {canary.weight}%", trigger, result)
    advanced = canary.evolve(
        at=now,
        by=actor,
        step=nxt,
        weight=steps[nxt],
        step_started_at=now,
        failures=0,
        last_analysis=evidence,
        reason=f"analysis passed at {canary.weight}%",
    )
    saved = save(svc, advanced, canary.revision, "canary_advance", advanced.reason, trigger, analysis=result)
    return report(
        svc,
        saved,
        "advanced",
        f"{canary.model} {canary.environment} canary advanced to {saved.weight}%",
        result,
        [event(saved, "canary_advance")],
    )


def _failed(result: AnalysisResult) -> str:
    return "; ".join(f"{c.metric}: {c.detail}" for c in result.comparisons if c.passed is False)


# -- operators -----------------------------------------------------------------------
def change_canary(cmd: ChangeCanary, svc: Services) -> Outcome:
    """Pause, resume, abort or promote the canary in ``cmd.environment`` (conditional on ``expected_revision``)."""
    if cmd.action not in CANARY_ACTIONS:
        raise InvalidInput(
            f"unknown canary action {cmd.action!r}; use one of {', '.join(CANARY_ACTIONS)}", field="action"
        )
    revision = cmd.expected_revision
    if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int) or revision < 1):
        raise InvalidInput(
            f"expected revision must be a whole number from 1 (see canary status), not {revision!r}",
            field="expected_revision",
        )
    svc.policy.check_environment(cmd.environment)
    if cmd.model not in svc.registry.list_models():
        raise UnknownModel(f"unknown model {cmd.model!r}: register a version first", model=cmd.model)
    authz.authorize(svc, cmd.actor, "promote", cmd.model, cmd.environment, trigger=cmd.trigger)
    for _attempt in range(CAS_ATTEMPTS):
        canary = svc.registry.get_canary(cmd.model, cmd.environment)
        if canary is None:
            raise NotFound(
                f"{cmd.model} has no canary in {cmd.environment}", model=cmd.model, environment=cmd.environment
            )
        done = _already(cmd, canary)
        if done is not None:
            return done
        if cmd.expected_revision is not None and canary.revision != cmd.expected_revision:
            raise _changed_since(cmd, canary.revision)
        if not canary.active:
            raise Conflict(
                f"the canary of {cmd.model} v{canary.candidate_version} in {cmd.environment} already ended "
                f"({canary.state}); nothing to {cmd.action}",
                model=cmd.model,
                environment=cmd.environment,
            )
        try:
            return _apply(cmd, svc, canary)
        except ConcurrencyConflict as exc:
            if cmd.expected_revision is not None:  # another change committed after the read above
                now = svc.registry.get_canary(cmd.model, cmd.environment)
                raise _changed_since(cmd, now.revision if now else 0) from exc
    raise ConcurrencyConflict(f"the canary of {cmd.model} {cmd.environment} kept changing; try again")


def _changed_since(cmd: ChangeCanary, revision: int) -> ConcurrencyConflict:
    return ConcurrencyConflict(
        f"the canary of {cmd.model} {cmd.environment} is at revision {revision}, "
        f"not {cmd.expected_revision}: it changed since you looked; check its status and try again",
        model=cmd.model,
        environment=cmd.environment,
    )


def _already(cmd: ChangeCanary, canary: Canary) -> Outcome | None:
    """The outcome of an action already in effect (a duplicated request): nothing changes."""
    target = {"pause": "paused", "resume": "running", "abort": "aborted", "promote": "promoted"}[cmd.action]
    if canary.state != target:
        return None
    return Outcome(
        "unchanged",
        f"the canary of {cmd.model} v{canary.candidate_version} in {cmd.environment} is already {target}",
        {"model": cmd.model, "environment": cmd.environment, "canary": canary.to_dict()},
    )


def _apply(cmd: ChangeCanary, svc: Services, canary: Canary) -> Outcome:
    now = svc.clock()
    reason = cmd.reason or f"{cmd.action} by an operator"
    if cmd.action == "abort":
        return abort(svc, canary, cmd.actor, reason, cmd.trigger, None)
    if cmd.action == "promote":
        return finish_promoted(svc, canary, cmd.actor, reason, cmd.trigger, None)
    state = "paused" if cmd.action == "pause" else "running"
    changed = canary.evolve(at=now, by=cmd.actor, state=state, reason=reason)
    action = f"canary_{cmd.action}"
    saved = save(svc, changed, canary.revision, action, reason, cmd.trigger)
    status = "paused" if cmd.action == "pause" else "resumed"
    return report(
        svc,
        saved,
        status,
        f"{cmd.model} {cmd.environment} canary {status} at {saved.weight}%",
        None,
        [event(saved, action)],
    )
