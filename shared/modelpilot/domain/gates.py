"""Promotion gates: pure evaluation of a policy against a candidate version.

:func:`evaluate_gates` returns a :class:`GateReport` in which every gate says
``passed``, ``failed`` or ``skipped``, with the numbers it compared and why. The
report's digest is stored in the audit record of the promotion it allowed.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from modelpilot.domain.durations import format_duration
from modelpilot.domain.model import canonical_json, sha256_hex

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.model import Approval, ModelVersion, MonitorStatus
    from modelpilot.policy import EnvironmentGates, RegressionRule

__all__ = ["GateContext", "GateReport", "GateResult", "evaluate_gates", "regression_check"]

GateStatus = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate."""

    gate: str
    status: GateStatus
    reason: str
    observed: Any = None
    expected: Any = None


@dataclass(frozen=True)
class GateReport:
    """Every gate's outcome for promoting one version into one environment."""

    model: str
    version: int
    environment: str
    results: tuple[GateResult, ...]
    evaluated_at: str

    @property
    def passed(self) -> bool:
        """True when no gate failed."""
        return all(r.status != "failed" for r in self.results)

    @property
    def failures(self) -> list[GateResult]:
        """The gates that failed."""
        return [r for r in self.results if r.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view (what the digest covers)."""
        return {
            "model": self.model,
            "version": self.version,
            "environment": self.environment,
            "passed": self.passed,
            "evaluated_at": self.evaluated_at,
            "gates": [asdict(r) for r in self.results],
        }

    def digest(self) -> str:
        """Return the sha256 of the report's canonical JSON."""
        return sha256_hex(canonical_json(self.to_dict()))


@dataclass(frozen=True)
class GateContext:
    """Everything the gates look at, gathered by the service layer.

    ``in_previous_since`` is when the candidate entered the previous environment
    (None when it is not there now); ``drift_status`` and ``slo_status`` are the
    monitors' verdicts for the previous environment (None when no monitor reported).
    """

    candidate: ModelVersion
    environment: str
    now: datetime
    previous_environment: str | None = None
    in_previous_since: datetime | None = None
    incumbent: ModelVersion | None = None
    approvals: list[Approval] = field(default_factory=list)
    drift_status: MonitorStatus | None = None
    slo_status: MonitorStatus | None = None


def regression_check(rule: RegressionRule, candidate: float, baseline: float) -> tuple[bool, float]:
    """Apply an MLflow-style no-regression rule; return (passed, the bound the candidate had to reach)."""
    sign = 1.0 if rule.greater_is_better else -1.0
    bounds: list[float] = []
    if rule.min_absolute_change is not None:
        bounds.append(baseline + sign * rule.min_absolute_change)
    if rule.min_relative_change is not None:
        bounds.append(baseline + sign * abs(baseline) * rule.min_relative_change)
    if not bounds:
        bounds.append(baseline)
    bound = max(bounds) if rule.greater_is_better else min(bounds)
    ok = candidate >= bound if rule.greater_is_better else candidate <= bound
    return ok, bound


def _status_gate(gate: str, status: MonitorStatus | None, candidate: int, env: str | None) -> GateResult:
    if env is None:
        return GateResult(gate, "skipped", "first environment: there is no previous environment to watch")
    if status is None:
        return GateResult(gate, "passed", f"no monitor has reported for {env} yet")
    if status.state == "alert":
        return GateResult(
            gate,
            "failed",
            f"open alert in {env} (v{status.version}): {status.summary}",
            observed=status.state,
            expected="ok",
        )
    return GateResult(gate, "passed", f"{env} healthy as of {status.updated_at.isoformat()}", observed="ok")


def evaluate_gates(gates: EnvironmentGates, ctx: GateContext) -> GateReport:
    """Evaluate every gate of ``gates`` for ``ctx`` and return the report."""
    cand = ctx.candidate
    results: list[GateResult] = []

    if cand.status == "rejected":
        results.append(GateResult("status", "failed", f"v{cand.version} was rejected", observed="rejected"))
    elif cand.status == "pending_approval":
        results.append(
            GateResult(
                "status",
                "failed",
                f"v{cand.version} awaits approval in its source registry",
                observed="pending_approval",
            )
        )
    else:
        results.append(GateResult("status", "passed", "version is registered", observed=cand.status))

    if ctx.previous_environment is not None:
        if ctx.in_previous_since is None:
            results.append(
                GateResult(
                    "order",
                    "failed",
                    f"v{cand.version} is not in {ctx.previous_environment}; promote it there first",
                )
            )
        else:
            results.append(GateResult("order", "passed", f"v{cand.version} is in {ctx.previous_environment}"))

    for threshold in gates.thresholds:
        value = cand.manifest.metrics.get(threshold.metric)
        name = f"threshold:{threshold.metric}"
        if value is None:
            results.append(
                GateResult(
                    name, "failed", f"metric {threshold.metric!r} missing from the manifest", expected=str(threshold)
                )
            )
        elif threshold.holds(value):
            results.append(
                GateResult(
                    name,
                    "passed",
                    f"{threshold.metric}={value:g} meets {threshold}",
                    observed=value,
                    expected=str(threshold),
                )
            )
        else:
            results.append(
                GateResult(
                    name,
                    "failed",
                    f"{threshold.metric}={value:g} does not meet {threshold}",
                    observed=value,
                    expected=str(threshold),
                )
            )

    for rule in gates.no_regression:
        name = f"no_regression:{rule.metric}"
        if ctx.incumbent is None:
            results.append(GateResult(name, "skipped", f"no version in {ctx.environment} to compare with"))
            continue
        if ctx.incumbent.version == cand.version:
            results.append(GateResult(name, "skipped", "candidate is the incumbent"))
            continue
        new = cand.manifest.metrics.get(rule.metric)
        old = ctx.incumbent.manifest.metrics.get(rule.metric)
        if new is None:
            results.append(GateResult(name, "failed", f"metric {rule.metric!r} missing from the candidate"))
            continue
        if old is None:
            results.append(GateResult(name, "skipped", f"incumbent v{ctx.incumbent.version} has no {rule.metric!r}"))
            continue
        ok, bound = regression_check(rule, new, old)
        better = "higher" if rule.greater_is_better else "lower"
        verdict: GateStatus = "passed" if ok else "failed"
        results.append(
            GateResult(
                name,
                verdict,
                f"{rule.metric}: candidate v{cand.version}={new:g} vs incumbent v{ctx.incumbent.version}={old:g}; "
                f"needs {'>=' if rule.greater_is_better else '<='} {bound:g} ({better} is better)",
                observed=new,
                expected={"baseline": old, "bound": bound},
            )
        )

    if gates.soak:
        if ctx.previous_environment is None:
            results.append(GateResult("soak", "skipped", "first environment: nothing to soak in"))
        elif ctx.in_previous_since is None:
            results.append(
                GateResult("soak", "failed", f"not in {ctx.previous_environment}", expected=format_duration(gates.soak))
            )
        else:
            soaked = (ctx.now - ctx.in_previous_since).total_seconds()
            ok = soaked >= gates.soak
            results.append(
                GateResult(
                    "soak",
                    "passed" if ok else "failed",
                    f"{format_duration(soaked)} in {ctx.previous_environment}, needs {format_duration(gates.soak)}",
                    observed=int(soaked),
                    expected=gates.soak,
                )
            )

    if gates.approvals:
        counted: list[str] = []
        ignored: list[str] = []
        for approval in ctx.approvals:
            if gates.four_eyes and approval.approver == cand.registered_by:
                ignored.append(f"{approval.approver} (registrant, four-eyes)")
            elif gates.approvers and not any(fnmatch.fnmatchcase(approval.approver, p) for p in gates.approvers):
                ignored.append(f"{approval.approver} (not an allowed approver)")
            elif approval.approver not in counted:
                counted.append(approval.approver)
        ok = len(counted) >= gates.approvals
        reason = f"{len(counted)} of {gates.approvals} approvals" + (f" ({', '.join(counted)})" if counted else "")
        if ignored:
            reason += f"; not counted: {', '.join(ignored)}"
        results.append(
            GateResult("approvals", "passed" if ok else "failed", reason, observed=counted, expected=gates.approvals)
        )

    if gates.require_no_drift_alert:
        results.append(_status_gate("no_drift_alert", ctx.drift_status, cand.version, ctx.previous_environment))
    if gates.require_slo_healthy:
        results.append(_status_gate("slo_healthy", ctx.slo_status, cand.version, ctx.previous_environment))

    return GateReport(cand.model, cand.version, ctx.environment, tuple(results), ctx.now.isoformat())
