"""Read-only queries: status, alias history, "what ran at time T", audit verification.

Every read an operator makes (the AWS and Azure operator APIs, the CLI) goes through the ``read_*``
functions, which take the caller's canonical identity and check the ``view`` action
(:mod:`modelpilot.service.authz`) before they read: with a ``roles`` block in the policy a caller needs a
role (viewer, promoter, approver or admin) covering the model (and environment); a denial is audited on the
model's chain and raised as ``NotAuthorized`` (403). Without a ``roles`` block nobody is restricted.
The plain functions below them read without a check (the service's own use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.exceptions import NotAuthorized, UnknownModel
from modelpilot.service.authz import authorize, denial

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.audit import ChainVerdict
    from modelpilot.domain.canary import Canary
    from modelpilot.policy import Policy
    from modelpilot.ports import RegistryStore
    from modelpilot.service.messagebus import Services

__all__ = [
    "alias_history",
    "authorize_view",
    "canary_status",
    "read_audit",
    "read_canary_status",
    "read_history",
    "read_incident",
    "read_monitor_status",
    "read_status",
    "read_version_at",
    "status",
    "verify_audit",
    "version_at",
    "viewable_models",
]


def authorize_view(svc: Services, actor: str, model: str, environment: str | None = None) -> None:
    """Raise ``UnknownModel`` for a model the registry never saw, and ``NotAuthorized`` (audited on the model's
    chain, as a denied write is) unless ``actor`` may view ``model`` (in ``environment``)."""
    registry = svc.registry
    if model not in registry.list_models() and model not in registry.audited_models():
        raise UnknownModel(f"unknown model {model!r}", model=model)
    authorize(svc, actor, "view", model, environment)


def viewable_models(svc: Services, actor: str, model: str | None = None) -> list[str]:
    """Return ``[model]`` (``view`` checked, as :func:`authorize_view`) or every model ``actor`` may view.

    A fleet-wide read leaves out the models ``actor`` may not view; when that is every model there
    is, it is refused with ``NotAuthorized`` (counted, not audited: it names no model).
    """
    if model is not None:
        authorize_view(svc, actor, model)
        return [model]
    names = svc.registry.list_models()
    visible = [m for m in names if denial(svc, actor, "view", m, None) is None]
    if names and not visible:
        telemetry.counter_add("modelpilot.denials", 1, {"model": "*", "action": "view"})
        raise NotAuthorized(f"{actor} may not view any model: no role in the policy allows it", actor=actor)
    return visible


def read_status(svc: Services, actor: str, model: str | None = None) -> list[dict[str, Any]]:
    """:func:`status` for ``actor``: one model (``view`` checked) or every model ``actor`` may view."""
    visible = viewable_models(svc, actor, model)
    if model is not None:
        return status(svc.registry, svc.policy, model)
    return [r for r in status(svc.registry, svc.policy) if r["model"] in visible]


def read_monitor_status(
    svc: Services, actor: str, kind: str, model: str | None = None, environment: str | None = None
) -> list[dict[str, Any]]:
    """The monitors' last verdicts of ``kind`` (drift, slo, quality) of the models ``actor`` may view."""
    if environment is not None:
        svc.policy.check_environment(environment)
    found = []
    for name in viewable_models(svc, actor, model):
        for row in svc.registry.list_monitor_status(name):
            if row.kind == kind and environment in (None, row.environment):
                found.append(row.to_dict())
    return found


def read_history(svc: Services, actor: str, model: str, environment: str) -> list[dict[str, Any]]:
    """:func:`alias_history` for ``actor`` (``view`` on the model in ``environment`` checked)."""
    svc.policy.check_environment(environment)
    authorize_view(svc, actor, model, environment)
    return alias_history(svc.registry, model, environment)


def read_version_at(svc: Services, actor: str, model: str, environment: str, when: datetime) -> int | None:
    """:func:`version_at` for ``actor`` (``view`` on the model in ``environment`` checked)."""
    svc.policy.check_environment(environment)
    authorize_view(svc, actor, model, environment)
    return version_at(svc.registry, model, environment, when)


def read_canary_status(svc: Services, actor: str, model: str, environment: str | None = None) -> list[dict[str, Any]]:
    """:func:`canary_status` for ``actor`` (``view`` on the model, in ``environment`` when named, checked)."""
    if environment is not None:
        svc.policy.check_environment(environment)
    authorize_view(svc, actor, model, environment)
    return canary_status(svc.registry, svc.policy, model, environment)


def read_audit(svc: Services, actor: str, model: str) -> list[dict[str, Any]]:
    """A model's audit records, oldest first, for ``actor`` (``view`` on the model checked)."""
    authorize_view(svc, actor, model)
    return [r.to_dict() for r in svc.registry.audit_records(model)]


def read_incident(
    svc: Services,
    actor: str,
    model: str,
    environment: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """The incident timeline (:func:`modelpilot.service.incident.incident_timeline`) for ``actor``."""
    from modelpilot.service.incident import incident_timeline

    svc.policy.check_environment(environment)
    authorize_view(svc, actor, model, environment)
    return incident_timeline(svc, model, environment, start=start, end=end)


def status(registry: RegistryStore, policy: Policy, model: str | None = None) -> list[dict[str, Any]]:
    """Return one row per (model, environment): version, revision, latest version, monitor states, canary.

    ``canary`` is None unless a canary is active (running or paused) there; then it is
    ``{"candidate_version", "stable_version", "weight", "step", "state", "revision"}``.
    """
    models = [model] if model else registry.list_models()
    if model and model not in registry.list_models():
        raise UnknownModel(f"unknown model {model!r}", model=model)
    rows: list[dict[str, Any]] = []
    for name in models:
        versions = registry.list_versions(name)
        latest = versions[-1].version if versions else None
        monitors = {(s.environment, s.kind): s for s in registry.list_monitor_status(name)}
        for env in policy.environments:
            alias = registry.get_alias(name, env)
            drift = monitors.get((env, "drift"))
            slo = monitors.get((env, "slo"))
            canary = registry.get_canary(name, env)
            rows.append(
                {
                    "model": name,
                    "environment": env,
                    "version": alias.version if alias else None,
                    "revision": alias.revision if alias else 0,
                    "updated_at": alias.updated_at.isoformat() if alias else None,
                    "updated_by": alias.updated_by if alias else None,
                    "latest_version": latest,
                    "drift": drift.state if drift else None,
                    "slo": slo.state if slo else None,
                    "canary": _active_canary(canary),
                }
            )
    return rows


def _active_canary(canary: Canary | None) -> dict[str, Any] | None:
    if canary is None or not canary.active:
        return None
    return {
        "candidate_version": canary.candidate_version,
        "stable_version": canary.stable_version,
        "weight": canary.weight,
        "step": canary.step,
        "state": canary.state,
        "revision": canary.revision,
    }


def canary_status(
    registry: RegistryStore, policy: Policy, model: str, environment: str | None = None
) -> list[dict[str, Any]]:
    """Return the latest canary of ``model`` in ``environment`` (or every environment that had one).

    Each row is the canary (:meth:`Canary.to_dict`) plus ``split`` (percent per version), the ``steps``
    it recorded at its start and, while it runs, ``next_analysis_at``. Raises ``UnknownModel`` / ``UnknownEnvironment``.
    """
    from modelpilot.service.canary import due_at  # the service's own rule for when a step is due

    if model not in registry.list_models():
        raise UnknownModel(f"unknown model {model!r}", model=model)
    if environment is not None:
        policy.check_environment(environment)
    rows: list[dict[str, Any]] = []
    for env in [environment] if environment else policy.environments:
        canary = registry.get_canary(model, env)
        if canary is None:
            continue
        rules = policy.gates_for(model, env).canary
        row = canary.to_dict()
        row["split"] = {str(v): w for v, w in canary.split().weights().items()}
        row["steps"] = list(canary.step_weights(rules.steps if rules else None)) or None
        row["next_analysis_at"] = (
            due_at(canary, rules.interval).isoformat() if rules is not None and canary.state == "running" else None
        )
        rows.append(row)
    return rows


def alias_history(registry: RegistryStore, model: str, environment: str) -> list[dict[str, Any]]:
    """Return every move of an alias, oldest first."""
    if model not in registry.list_models():
        raise UnknownModel(f"unknown model {model!r}", model=model)
    return [c.to_dict() for c in registry.alias_history(model, environment)]


def version_at(registry: RegistryStore, model: str, environment: str, when: datetime) -> int | None:
    """Return the version ``environment``'s alias pointed at, at time ``when`` (None before the first move)."""
    if model not in registry.list_models():
        raise UnknownModel(f"unknown model {model!r}", model=model)
    current: int | None = None
    for change in registry.alias_history(model, environment):
        if change.at > when:
            break
        current = change.to_version
    return current


def verify_audit(registry: RegistryStore, model: str | None = None) -> list[ChainVerdict]:
    """Verify every model's chain (or one model's) against its head and the state; a verdict per model.

    Without a checkpoint; ``modelpilot.service.audit.verify_audit`` also takes the signed one.
    """
    from modelpilot.service import audit

    return audit.verify_audit(registry, model).verdicts
