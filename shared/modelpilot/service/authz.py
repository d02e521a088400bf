"""Authorization of the lifecycle commands, checked once in the service layer for every backend.

* ``system:`` actors are ModelPilot's own functions (the edges set them for events
  they receive and never take them from a caller): they are not restricted.
* With a ``roles`` block in the policy, an action needs a role allowing it for the
  model and environment (:mod:`modelpilot.policy.roles`).
* Without one, promote and rollback follow the ``operators`` list (empty = anyone).
* An approval also needs a proven, well-formed identity (not ``claimed:`` or
  ``anonymous:``), four-eyes (not the registrant, by canonical identity) and a match
  in the environment's ``approvers``.

Every denial appends a ``deny`` record to the model's audit chain before
``NotAuthorized`` is raised.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot import telemetry
from modelpilot.domain import identity
from modelpilot.domain.audit import AuditEntry
from modelpilot.exceptions import NotAuthorized
from modelpilot.policy.roles import allowed

if TYPE_CHECKING:
    from modelpilot.domain.model import ModelVersion
    from modelpilot.policy import EnvironmentGates
    from modelpilot.policy.roles import Action
    from modelpilot.service.messagebus import Services

__all__ = ["authorize", "authorize_approval", "denial"]

DENY_ACTION = "deny"


def denial(svc: Services, actor: str, action: Action, model: str, environment: str | None) -> str | None:
    """Return why ``actor`` may not ``action`` (None when allowed); no side effect."""
    if identity.is_system(actor):
        return None
    policy = svc.policy
    if policy.roles is not None:
        if allowed(policy.roles, actor, action, model, environment):
            return None
        where = f" in {environment}" if environment else ""
        return f"{actor} may not {action} {model}{where}: no role in the policy allows it"
    if action in ("promote", "rollback") and policy.operators and not identity.matches_any(actor, policy.operators):
        return f"{actor} may not {action}: not in the policy's operators"
    return None


def authorize(
    svc: Services,
    actor: str,
    action: Action,
    model: str,
    environment: str | None = None,
    *,
    version: int | None = None,
    trigger: str | None = None,
) -> None:
    """Raise ``NotAuthorized`` (after auditing the denial) unless ``actor`` may ``action``."""
    reason = denial(svc, actor, action, model, environment)
    if reason is not None:
        _deny(svc, reason, actor, action, model, environment, version, trigger)


def authorize_approval(
    svc: Services, approver: str, version: ModelVersion, environment: str, gates: EnvironmentGates, trigger: str | None
) -> None:
    """Raise ``NotAuthorized`` (audited) unless ``approver`` may approve ``version`` for ``environment``."""
    model, number = version.model, version.version
    reason: str | None
    if not identity.can_approve(approver):
        reason = (
            f"{approver!r} cannot approve: approvals need a proven identity "
            "(not a claimed name, a shared key or ModelPilot itself) with no spaces and at most one '@'"
        )
    elif gates.four_eyes and identity.same(approver, version.registered_by):
        reason = f"{approver} registered {model} v{number} and may not approve it (four-eyes)"
    elif gates.approvers and not identity.matches_any(approver, gates.approvers):
        reason = f"{approver} is not an approver for {environment}"
    else:
        reason = denial(svc, approver, "approve", model, environment)
    if reason is not None:
        _deny(svc, reason, approver, "approve", model, environment, number, trigger)


def _deny(
    svc: Services,
    reason: str,
    actor: str,
    action: Action,
    model: str,
    environment: str | None,
    version: int | None,
    trigger: str | None,
) -> None:
    svc.registry.append_audit(
        AuditEntry(
            model=model,
            actor=actor,
            action=DENY_ACTION,
            timestamp=svc.clock(),
            environment=environment,
            to_version=version,
            reason=reason,
            trigger=trigger,
            evidence={"attempted": action},
        )
    )
    telemetry.counter_add("modelpilot.denials", 1, {"model": model, "action": action})
    raise NotAuthorized(reason, actor=actor, action=action)
