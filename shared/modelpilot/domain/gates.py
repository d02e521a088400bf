"""Promotion gates: pure evaluation of a policy against a candidate version.

:func:`evaluate_gates` returns a :class:`GateReport` in which every gate says
``passed``, ``failed`` or ``skipped``, with the numbers it compared and why. The
report's digest is stored in the audit record of the promotion it allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from modelpilot.domain import identity
from modelpilot.domain.durations import format_duration
from modelpilot.domain.model import canonical_json, sha256_hex

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from modelpilot.domain.model import Approval, ModelVersion, MonitorStatus

__all__ = [
    "GATES",
    "Gate",
    "GateContext",
    "GateReport",
    "GateResult",
    "LiveMetrics",
    "check_approvals",
    "check_no_drift_alert",
    "check_no_regression",
    "check_order",
    "check_quality_healthy",
    "check_slo_healthy",
    "check_soak",
    "check_status",
    "check_thresholds",
    "evaluate_gates",
    "regression_check",
]

GateStatus = Literal["passed", "failed", "skipped"]


class MetricThreshold(Protocol):
    """An absolute bound on one metric (the policy's ``thresholds`` entries satisfy it)."""

    @property
    def metric(self) -> str: ...

    def holds(self, observed: float) -> bool:
        """Return True when ``observed`` satisfies the bound."""
        ...


class RegressionRule(Protocol):
    """A no-regression rule against the incumbent (the policy's ``no_regression`` entries satisfy it)."""

    @property
    def metric(self) -> str: ...

    @property
    def greater_is_better(self) -> bool: ...

    @property
    def min_absolute_change(self) -> float | None: ...

    @property
    def min_relative_change(self) -> float | None: ...

    @property
    def source(self) -> str:
        """Where both versions' values come from: ``manifest`` (at registration) or ``mlflow`` (their runs, now)."""
        ...


class EnvironmentGates(Protocol):
    """What the gates of one environment ask for: the shape the domain needs of the policy.

    The policy file's ``EnvironmentGates`` (``modelpilot.policy.gates``, pydantic) satisfies it
    structurally, so the domain stays free of the policy layer and of pydantic.
    """

    @property
    def thresholds(self) -> Sequence[MetricThreshold]: ...

    @property
    def no_regression(self) -> Sequence[RegressionRule]: ...

    @property
    def soak(self) -> int | None: ...

    @property
    def approvals(self) -> int: ...

    @property
    def four_eyes(self) -> bool: ...

    @property
    def approvers(self) -> Sequence[str]: ...

    @property
    def require_no_drift_alert(self) -> bool: ...

    @property
    def require_slo_healthy(self) -> bool: ...

    @property
    def require_quality_healthy(self) -> bool: ...


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
class LiveMetrics:
    """Run metrics read from the MLflow tracking server at promotion time, per ModelPilot version.

    ``runs`` maps a version to its MLflow run id, ``metrics`` to that run's latest metric values, and ``errors`` to
    why a version's run could not be read (no run id in its lineage, the run is gone, no MLflow configured): a rule
    with ``source: mlflow`` fails on any of them, never passes.
    """

    runs: dict[int, str] = field(default_factory=dict)
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the evidence recorded in the audit: the values read, per version (JSON keys are strings)."""
        return {
            f"v{v}": {"run_id": self.runs.get(v), "metrics": self.metrics.get(v), "error": self.errors.get(v)}
            for v in sorted({*self.runs, *self.metrics, *self.errors})
        }


@dataclass(frozen=True)
class GateContext:
    """Everything the gates look at, gathered by the service layer.

    ``in_previous_since`` is when the candidate entered the previous environment
    (None when it is not there now); ``drift_status``, ``slo_status`` and ``quality_status``
    are the monitors' verdicts for the previous environment (None when no monitor reported); ``live_metrics`` are
    the candidate's and incumbent's MLflow run metrics read for ``source: mlflow`` rules (None when not read).
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
    quality_status: MonitorStatus | None = None
    live_metrics: LiveMetrics | None = None


#: one gate: the results it adds to the report (none when the policy does not ask for it)
Gate = Callable[["EnvironmentGates", GateContext], list[GateResult]]


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


def check_status(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """The candidate is neither rejected nor awaiting approval in its source registry."""
    cand = ctx.candidate
    if cand.status == "rejected":
        return [GateResult("status", "failed", f"v{cand.version} was rejected", observed="rejected")]
    if cand.status == "pending_approval":
        return [
            GateResult(
                "status",
                "failed",
                f"v{cand.version} awaits approval in its source registry",
                observed="pending_approval",
            )
        ]
    return [GateResult("status", "passed", "version is registered", observed=cand.status)]


def check_order(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """The candidate runs in the previous environment now (no gate for the first environment)."""
    cand, previous = ctx.candidate, ctx.previous_environment
    if previous is None:
        return []
    if ctx.in_previous_since is None:
        return [GateResult("order", "failed", f"v{cand.version} is not in {previous}; promote it there first")]
    return [GateResult("order", "passed", f"v{cand.version} is in {previous}")]


def _threshold(threshold: MetricThreshold, cand: ModelVersion) -> GateResult:
    value = cand.manifest.metrics.get(threshold.metric)
    name = f"threshold:{threshold.metric}"
    if value is None:
        return GateResult(
            name, "failed", f"metric {threshold.metric!r} missing from the manifest", expected=str(threshold)
        )
    if threshold.holds(value):
        return GateResult(
            name, "passed", f"{threshold.metric}={value:g} meets {threshold}", observed=value, expected=str(threshold)
        )
    return GateResult(
        name,
        "failed",
        f"{threshold.metric}={value:g} does not meet {threshold}",
        observed=value,
        expected=str(threshold),
    )


def check_thresholds(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """Each absolute bound on a manifest metric holds (one result per threshold)."""
    return [_threshold(threshold, ctx.candidate) for threshold in gates.thresholds]


def _compare(
    rule: RegressionRule, cand: ModelVersion, incumbent: ModelVersion, new: float, old: float, **evidence: Any
) -> GateResult:
    ok, bound = regression_check(rule, new, old)
    better = "higher" if rule.greater_is_better else "lower"
    where = " (MLflow runs, read now)" if evidence else ""
    return GateResult(
        f"no_regression:{rule.metric}",
        "passed" if ok else "failed",
        f"{rule.metric}: candidate v{cand.version}={new:g} vs incumbent v{incumbent.version}={old:g}{where}; "
        f"needs {'>=' if rule.greater_is_better else '<='} {bound:g} ({better} is better)",
        observed=new,
        expected={"baseline": old, "bound": bound, **evidence},
    )


def _live(rule: RegressionRule, ctx: GateContext, incumbent: ModelVersion) -> GateResult:
    """A ``source: mlflow`` rule: both versions' run metrics as read now; anything missing fails (fail closed)."""
    cand, live, name = ctx.candidate, ctx.live_metrics, f"no_regression:{rule.metric}"
    if live is None:
        return GateResult(name, "failed", "the MLflow run metrics were not read (source: mlflow)")
    values: list[float] = []
    for role, version in (("candidate", cand), ("incumbent", incumbent)):
        n = version.version
        if n in live.errors:
            return GateResult(name, "failed", f"{role} v{n}: {live.errors[n]}", expected={"source": "mlflow"})
        value = live.metrics.get(n, {}).get(rule.metric)
        if value is None:
            reason = f"{role} v{n}'s MLflow run {live.runs.get(n)} has no metric {rule.metric!r}"
            return GateResult(name, "failed", reason, expected={"source": "mlflow", "run_id": live.runs.get(n)})
        values.append(value)
    runs = {"candidate_run": live.runs.get(cand.version), "incumbent_run": live.runs.get(incumbent.version)}
    return _compare(rule, cand, incumbent, values[0], values[1], source="mlflow", **runs)


def _no_regression(rule: RegressionRule, ctx: GateContext) -> GateResult:
    cand, incumbent = ctx.candidate, ctx.incumbent
    name = f"no_regression:{rule.metric}"
    if incumbent is None:
        return GateResult(name, "skipped", f"no version in {ctx.environment} to compare with")
    if incumbent.version == cand.version:
        return GateResult(name, "skipped", "candidate is the incumbent")
    if getattr(rule, "source", "manifest") == "mlflow":
        return _live(rule, ctx, incumbent)
    new = cand.manifest.metrics.get(rule.metric)
    old = incumbent.manifest.metrics.get(rule.metric)
    if new is None:
        return GateResult(name, "failed", f"metric {rule.metric!r} missing from the candidate")
    if old is None:
        return GateResult(name, "skipped", f"incumbent v{incumbent.version} has no {rule.metric!r}")
    return _compare(rule, cand, incumbent, new, old)


def check_no_regression(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """The candidate does not regress against the incumbent (one result per rule)."""
    return [_no_regression(rule, ctx) for rule in gates.no_regression]


def check_soak(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """The candidate has run in the previous environment for at least ``soak`` seconds."""
    if not gates.soak:
        return []
    previous = ctx.previous_environment
    if previous is None:
        return [GateResult("soak", "skipped", "first environment: nothing to soak in")]
    if ctx.in_previous_since is None:
        return [GateResult("soak", "failed", f"not in {previous}", expected=format_duration(gates.soak))]
    soaked = (ctx.now - ctx.in_previous_since).total_seconds()
    return [
        GateResult(
            "soak",
            "passed" if soaked >= gates.soak else "failed",
            f"{format_duration(soaked)} in {previous}, needs {format_duration(gates.soak)}",
            observed=int(soaked),
            expected=gates.soak,
        )
    ]


def check_approvals(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """Enough distinct allowed approvers approved; with four-eyes the registrant's own approval does not count.

    Approvers are compared by canonical identity (:mod:`modelpilot.domain.identity`):
    ``carol`` and ``CAROL `` count once, an assumed role counts once whatever its
    session names, and claimed, anonymous or system actors never count.
    """
    if not gates.approvals:
        return []
    counted: list[str] = []
    ignored: list[str] = []
    for approval in ctx.approvals:
        who = identity.canonical(approval.approver)
        if not identity.can_approve(who):
            ignored.append(f"{approval.approver} (not a proven, well-formed identity)")
        elif gates.four_eyes and identity.same(who, ctx.candidate.registered_by):
            ignored.append(f"{approval.approver} (registrant, four-eyes)")
        elif gates.approvers and not identity.matches_any(who, gates.approvers):
            ignored.append(f"{approval.approver} (not an allowed approver)")
        elif who not in counted:
            counted.append(who)
    ok = len(counted) >= gates.approvals
    reason = f"{len(counted)} of {gates.approvals} approvals" + (f" ({', '.join(counted)})" if counted else "")
    if ignored:
        reason += f"; not counted: {', '.join(ignored)}"
    return [GateResult("approvals", "passed" if ok else "failed", reason, observed=counted, expected=gates.approvals)]


def _monitor_gate(gate: str, status: MonitorStatus | None, env: str | None) -> GateResult:
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


def check_no_drift_alert(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """No drift alert is open in the previous environment."""
    if not gates.require_no_drift_alert:
        return []
    return [_monitor_gate("no_drift_alert", ctx.drift_status, ctx.previous_environment)]


def check_slo_healthy(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """No SLO alert is open in the previous environment."""
    if not gates.require_slo_healthy:
        return []
    return [_monitor_gate("slo_healthy", ctx.slo_status, ctx.previous_environment)]


def check_quality_healthy(gates: EnvironmentGates, ctx: GateContext) -> list[GateResult]:
    """No model-quality alert (realised or estimated performance, coverage, attribution drift) is open in the
    previous environment."""
    if not gates.require_quality_healthy:
        return []
    return [_monitor_gate("quality_healthy", ctx.quality_status, ctx.previous_environment)]


#: every gate, in the order the report lists them; a gate the policy does not ask for returns no result
GATES: tuple[Gate, ...] = (
    check_status,
    check_order,
    check_thresholds,
    check_no_regression,
    check_soak,
    check_approvals,
    check_no_drift_alert,
    check_slo_healthy,
    check_quality_healthy,
)


def evaluate_gates(gates: EnvironmentGates, ctx: GateContext) -> GateReport:
    """Evaluate every gate of ``gates`` for ``ctx`` and return the report."""
    results = tuple(result for check in GATES for result in check(gates, ctx))
    cand = ctx.candidate
    return GateReport(cand.model, cand.version, ctx.environment, results, ctx.now.isoformat())
