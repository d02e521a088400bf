"""Where a release stands: read-only queries ``modelpilot wait`` asks while a pipeline waits.

:func:`release_state` finds a version (by number or manifest digest), follows it
through the policy's environments up to a target, and says whether it got there,
is still on its way (and which gates it waits for), or cannot get there (a gate that
waiting cannot change failed, or it was rolled back). Nothing is written: the gates
of the next environment are evaluated as a dry run, without events or notifications.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from modelpilot.domain.gates import GateContext, GateReport, evaluate_gates
from modelpilot.exceptions import UnknownVersion
from modelpilot.service.live_metrics import needs_live_metrics, read_live_metrics

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.model import AliasChange, ModelVersion
    from modelpilot.policy import Policy
    from modelpilot.ports import MlflowRegistry, RegistryStore

__all__ = ["FINAL_GATES", "EnvironmentStep", "ReleaseState", "find_release", "release_state"]

Verdict = Literal["unregistered", "pending", "reached", "blocked", "rolled_back"]
#: gates whose failure waiting cannot change (the manifest's metrics, a rejected version)
FINAL_GATES = ("status", "threshold:", "no_regression:")


@dataclass(frozen=True)
class EnvironmentStep:
    """The version's passage through one environment."""

    environment: str
    entered_at: datetime | None = None
    entered_by: str | None = None
    revision: int | None = None
    current_version: int | None = None
    #: the promotion's audit record: gate report digest and each gate's status
    gate_report_digest: str | None = None
    gates: dict[str, str] = field(default_factory=dict)
    left_by: AliasChange | None = None

    @property
    def entered(self) -> bool:
        """True when the version was promoted into this environment."""
        return self.entered_at is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "environment": self.environment,
            "entered_at": self.entered_at.isoformat() if self.entered_at else None,
            "entered_by": self.entered_by,
            "revision": self.revision,
            "current_version": self.current_version,
            "gate_report_digest": self.gate_report_digest,
            "gates": dict(self.gates),
            "left_by": self.left_by.to_dict() if self.left_by else None,
        }


@dataclass(frozen=True)
class ReleaseState:
    """Where one version stands on its way to ``target``."""

    model: str
    target: str
    verdict: Verdict
    message: str
    version: ModelVersion | None = None
    steps: tuple[EnvironmentStep, ...] = ()
    #: the dry-run gate report of the first environment the version has not entered yet
    next_environment: str | None = None
    report: GateReport | None = None

    @property
    def done(self) -> bool:
        """True when waiting longer cannot change the verdict."""
        return self.verdict in {"reached", "blocked", "rolled_back"}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "model": self.model,
            "target": self.target,
            "verdict": self.verdict,
            "message": self.message,
            "version": self.version.to_dict() if self.version else None,
            "steps": [s.to_dict() for s in self.steps],
            "next_environment": self.next_environment,
            "gate_report": self.report.to_dict() if self.report else None,
        }


def find_release(
    registry: RegistryStore, model: str, *, version: int | None, digest: str | None
) -> ModelVersion | None:
    """Return the version named by number or by manifest digest; None while it is not registered."""
    if version is not None:
        if model not in registry.list_models():
            return None
        try:
            return registry.get_version(model, version)
        except UnknownVersion:
            return None
    return registry.find_version(model, manifest_digest=digest)


def _step(registry: RegistryStore, candidate: ModelVersion, environment: str) -> EnvironmentStep:
    history = registry.alias_history(candidate.model, environment)
    alias = registry.get_alias(candidate.model, environment)
    current = alias.version if alias else None
    entries = [i for i, c in enumerate(history) if c.to_version == candidate.version]
    if not entries:
        return EnvironmentStep(environment, current_version=current)
    last = entries[-1]
    change = history[last]
    left = next((c for c in history[last + 1 :] if c.from_version == candidate.version), None)
    record = next(
        (
            r
            for r in reversed(registry.audit_records(candidate.model))
            if r.action == "promote" and r.environment == environment and r.to_version == candidate.version
        ),
        None,
    )
    gates = dict(record.evidence.get("gates", {})) if record else {}
    return EnvironmentStep(
        environment,
        entered_at=change.at,
        entered_by=change.actor,
        revision=change.revision,
        current_version=current,
        gate_report_digest=record.gate_report_digest if record else None,
        gates={str(k): str(v) for k, v in gates.items()},
        left_by=left,
    )


def _dry_run(
    registry: RegistryStore,
    policy: Policy,
    candidate: ModelVersion,
    environment: str,
    now: datetime,
    mlflow: MlflowRegistry | None,
) -> GateReport:
    """Evaluate the gates of ``environment`` for ``candidate`` as a promotion would, writing nothing (the MLflow runs
    of ``source: mlflow`` no-regression rules are read as a promotion reads them)."""
    model = candidate.model
    previous = policy.previous_environment(environment)
    alias = registry.get_alias(model, environment)
    since = None
    if previous is not None:
        before = registry.get_alias(model, previous)
        if before is not None and before.version == candidate.version:
            history = registry.alias_history(model, previous)
            since = history[-1].at if history else before.updated_at
    gates = policy.gates_for(model, environment)
    incumbent = registry.get_version(model, alias.version) if alias else None
    live = None
    if incumbent is not None and incumbent.version != candidate.version and needs_live_metrics(gates):
        live = read_live_metrics(mlflow, [candidate, incumbent])
    ctx = GateContext(
        candidate=candidate,
        environment=environment,
        now=now,
        previous_environment=previous,
        in_previous_since=since,
        incumbent=incumbent,
        approvals=registry.list_approvals(model, candidate.version, environment),
        drift_status=registry.get_monitor_status(model, previous, "drift") if previous else None,
        slo_status=registry.get_monitor_status(model, previous, "slo") if previous else None,
        live_metrics=live,
    )
    return evaluate_gates(gates, ctx)


def release_state(
    registry: RegistryStore,
    policy: Policy,
    model: str,
    target: str,
    now: datetime,
    *,
    version: int | None = None,
    digest: str | None = None,
    mlflow: MlflowRegistry | None = None,
) -> ReleaseState:
    """Return where the version (``version`` or manifest ``digest``) stands on its way to ``target``.

    Verdicts: ``unregistered`` (not in the registry yet), ``pending`` (on its way; the
    report says what it waits for), ``reached`` (it was promoted into ``target``, and
    was not rolled back from there), ``blocked`` (a gate failed that waiting cannot
    change, or the upload's automatic promotion into the first environment was blocked),
    ``rolled_back`` (it reached ``target`` and was rolled back).
    """
    policy.check_environment(target)
    candidate = find_release(registry, model, version=version, digest=digest)
    if candidate is None:
        named = f"v{version}" if version is not None else f"manifest {digest}"
        return ReleaseState(model, target, "unregistered", f"{model} {named} is not registered yet")
    label = f"{model} v{candidate.version}"
    environments = policy.environments[: policy.environments.index(target) + 1]
    steps = tuple(_step(registry, candidate, env) for env in environments)
    final = steps[-1]
    if final.entered:
        if final.left_by is not None and final.left_by.action == "rollback":
            return ReleaseState(
                model,
                target,
                "rolled_back",
                f"{label} reached {target} and was rolled back to v{final.left_by.to_version} "
                f"by {final.left_by.actor}: {final.left_by.reason}",
                candidate,
                steps,
            )
        where = f"{label} is in {target} (revision {final.revision})"
        if final.current_version != candidate.version:
            where = f"{label} reached {target} (revision {final.revision}); {target} now runs v{final.current_version}"
        return ReleaseState(model, target, "reached", where, candidate, steps)
    pending = next(s for s in steps if not s.entered)
    report = _dry_run(registry, policy, candidate, pending.environment, now, mlflow)
    failures = report.failures
    first = pending.environment == policy.environments[0]
    if failures and (first or any(f.gate.startswith(FINAL_GATES) for f in failures)):
        return ReleaseState(
            model,
            target,
            "blocked",
            f"{label} cannot enter {pending.environment}: " + "; ".join(f.reason for f in failures),
            candidate,
            steps,
            pending.environment,
            report,
        )
    waiting = (
        "waiting for " + ", ".join(f.gate for f in failures)
        if failures
        else "the gates pass; waiting for the promotion"
    )
    return ReleaseState(
        model,
        target,
        "pending",
        f"{label} is not in {pending.environment} yet: {waiting}",
        candidate,
        steps,
        pending.environment,
        report,
    )
