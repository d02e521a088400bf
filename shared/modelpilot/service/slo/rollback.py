"""The automatic rollback policy: when an alert may move an alias, and where to.

``plan_rollback`` turns an alert into a conditional :class:`RollbackModel` (from
the breaching version, to an explicit target) or into a skip that says why:

* the environment no longer runs the breaching version (nothing to do);
* the same alert was already applied (a redelivery; trigger recorded in the history);
* cooldown: the alias's last move was a rollback less than ``cooldown`` ago, so
  this alert belongs to the incident that rollback answered;
* no eligible target: every earlier version was rejected, rolled back from, or
  breached an SLO in this environment (``slo_breach`` audit records).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.domain.commands import RollbackModel
from modelpilot.domain.durations import format_duration
from modelpilot.domain.events import RollbackSkipped
from modelpilot.domain.rollback import select_rollback_target
from modelpilot.service.lifecycle import _excluded_versions
from modelpilot.service.messagebus import Outcome

if TYPE_CHECKING:
    from modelpilot.policy.slo import RollbackPolicy
    from modelpilot.service.messagebus import MessageBus, Services

__all__ = ["BREACH_ACTION", "apply_rollback", "breached_versions", "plan_rollback", "rollback_policy"]

#: audit action that marks a version as having breached an SLO in an environment
BREACH_ACTION = "slo_breach"
LATENCY_METRIC = "modelpilot.rollback.latency_seconds"


def rollback_policy(svc: Services, model: str, environment: str) -> RollbackPolicy | None:
    """Return the rollback policy of ``model`` in ``environment`` (None: never automatic)."""
    return svc.policy.model_policy(model).rollback.get(environment)


def breached_versions(svc: Services, model: str, environment: str) -> set[int]:
    """Return the versions with an SLO breach recorded in ``environment``'s audit trail."""
    return {
        r.to_version
        for r in svc.registry.audit_records(model)
        if r.action == BREACH_ACTION and r.environment == environment and r.to_version is not None
    }


def plan_rollback(
    svc: Services,
    *,
    model: str,
    environment: str,
    from_version: int | None,
    policy: RollbackPolicy,
    actor: str,
    reason: str,
    trigger: str,
    evidence: dict[str, Any],
) -> RollbackModel | Outcome:
    """Return the rollback to run, or an Outcome explaining why none runs."""
    registry = svc.registry
    base = {"model": model, "environment": environment}
    alias = registry.get_alias(model, environment)
    if alias is None:
        return _skip(model, environment, actor, f"{model} has no version in {environment}", base)
    if from_version is not None and alias.version != from_version:
        return Outcome(
            "noop",
            f"{environment} no longer runs v{from_version} (it runs v{alias.version})",
            {**base, "version": alias.version},
        )
    history = registry.alias_history(model, environment)
    if any(c.trigger == trigger for c in history):
        return Outcome("unchanged", f"alert {trigger} was already applied", {**base, "version": alias.version})
    now = svc.clock()
    last = history[-1] if history else None
    if last is not None and last.action == "rollback" and (now - last.at).total_seconds() < policy.cooldown_seconds:
        return _skip(
            model,
            environment,
            actor,
            f"cooldown: {environment} was rolled back v{last.from_version} -> v{last.to_version} "
            f"{format_duration((now - last.at).total_seconds())} ago (cooldown {policy.cooldown})",
            {**base, "version": alias.version, "cooldown": True},
        )
    excluded = _excluded_versions(svc, model, environment)
    if policy.never_onto_breached:
        excluded |= breached_versions(svc, model, environment)
    target = select_rollback_target(history, alias.version, excluded=excluded)
    if target is None:
        return _skip(
            model,
            environment,
            actor,
            f"no earlier healthy version of {model} in {environment} to roll back to",
            base,
        )
    return RollbackModel(
        model=model,
        environment=environment,
        actor=actor,
        reason=reason,
        to_version=target,
        from_version=alias.version,
        trigger=trigger,
        evidence=evidence,
    )


def apply_rollback(bus: MessageBus, plan: RollbackModel | Outcome, *, alert_at: datetime | None) -> Outcome:
    """Run a planned rollback through the bus (or publish the skip) and record alert-to-move latency."""
    svc = bus.services
    if isinstance(plan, Outcome):
        if plan.events:
            svc.publisher.publish(plan.events, traceparent=telemetry.current_traceparent())
        return plan
    outcome = bus.handle(plan)
    record_latency(svc, outcome, alert_at)
    return outcome


def record_latency(svc: Services, outcome: Outcome, alert_at: datetime | None) -> None:
    """Record the seconds from the alert to the alias move, when the rollback happened."""
    if outcome.status != "rolled_back" or alert_at is None:
        return
    seconds = max((svc.clock() - alert_at).total_seconds(), 0.0)
    outcome.data["alert_to_rollback_seconds"] = seconds
    telemetry.histogram_record(
        LATENCY_METRIC,
        seconds,
        {"model": outcome.data.get("model"), "environment": outcome.data.get("environment")},
        unit="s",
    )


def parse_time(text: Any) -> datetime | None:
    """Return an aware datetime from ISO text (or None when absent or unparsable)."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else None


def _skip(model: str, environment: str, actor: str, message: str, data: dict[str, Any]) -> Outcome:
    return Outcome("skipped", message, dict(data), [RollbackSkipped(model, environment, actor, message)])
