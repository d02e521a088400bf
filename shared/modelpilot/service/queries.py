"""Read-only queries: status, alias history, "what ran at time T", audit verification."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import UnknownModel

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.audit import ChainVerdict
    from modelpilot.domain.canary import Canary
    from modelpilot.policy import Policy
    from modelpilot.ports import RegistryStore

__all__ = ["alias_history", "canary_status", "status", "verify_audit", "version_at"]


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
