"""Canary promotions: an environment's traffic split between a stable and a candidate version.

A canary is one promotion of ``candidate_version`` into ``environment`` done in steps
(the candidate's weight grows, e.g. 5 → 25 → 50 → 100 %) with an analysis between
steps. While it runs, the environment's alias still names the stable version; the
split itself is this record, published as a serving manifest that model servers read.
Reaching 100 % moves the alias to the candidate (an ordinary promotion) and ends the
canary as ``promoted``; an analysis that fails too often, or an operator, ends it as
``aborted`` with the candidate's weight back at 0 %.

``revision`` grows by one per change and is the compare-and-set token of the store
(``RegistryStore.save_canary``): two operators acting on one canary at once cannot
both win.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, cast

__all__ = [
    "ACTIVE_STATES",
    "CANARY_ACTIONS",
    "AnalysisResult",
    "Canary",
    "CanaryAction",
    "CanaryState",
    "MetricComparison",
    "TrafficSplit",
    "replaceable",
]

CanaryState = Literal["running", "paused", "promoted", "aborted"]
CanaryAction = Literal["pause", "resume", "abort", "promote"]

#: states in which the canary holds traffic and the scheduler looks at it
ACTIVE_STATES: frozenset[str] = frozenset({"running", "paused"})
CANARY_ACTIONS: tuple[CanaryAction, ...] = ("pause", "resume", "abort", "promote")


@dataclass(frozen=True)
class TrafficSplit:
    """What serves ``environment``: ``stable_version`` gets ``100 - candidate_weight`` percent.

    ``candidate_version`` is None (and the weight 0) when no canary holds traffic.
    """

    model: str
    environment: str
    stable_version: int
    candidate_version: int | None = None
    candidate_weight: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.candidate_weight <= 100:
            raise ValueError(f"candidate weight must be 0..100, got {self.candidate_weight}")
        if self.candidate_version is None and self.candidate_weight:
            raise ValueError("a weight needs a candidate version")

    def weights(self) -> dict[int, int]:
        """Return ``{version: percent}`` of every version that receives traffic."""
        if self.candidate_version is None or self.candidate_weight == 0:
            return {self.stable_version: 100}
        if self.candidate_weight == 100:
            return {self.candidate_version: 100}
        return {self.stable_version: 100 - self.candidate_weight, self.candidate_version: self.candidate_weight}


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one analysis: the candidate's value against the stable version's.

    A drift metric has no stable value: ``candidate`` is the share of drifted features.
    """

    metric: str
    candidate: float | None
    stable: float | None
    threshold: float
    samples: int
    passed: bool | None  # None: inconclusive (fewer samples than the minimum)
    detail: str = ""
    #: what a drift metric found (severity, drifted features, rows, files); None for ratio metrics
    evidence: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "candidate": self.candidate,
            "stable": self.stable,
            "threshold": self.threshold,
            "samples": self.samples,
            "passed": self.passed,
            "detail": self.detail,
        }
        if self.evidence is not None:
            out["evidence"] = self.evidence
        return out


@dataclass(frozen=True)
class AnalysisResult:
    """The analysis run at the end of one step: ``passed`` is None when it was inconclusive."""

    step: int
    weight: int
    window_start: datetime
    window_end: datetime
    passed: bool | None
    comparisons: tuple[MetricComparison, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view (the audit evidence of the step)."""
        return {
            "step": self.step,
            "weight": self.weight,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "passed": self.passed,
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


@dataclass(frozen=True)
class Canary:
    """A canary of ``candidate_version`` over ``stable_version`` in ``environment``.

    ``step`` indexes ``steps``, the weights recorded at the start (``weight`` is that step's percentage);
    ``failures`` counts failed analyses at the current step; ``step_started_at`` is when
    the current step's weight took effect (its analysis window starts there).
    """

    model: str
    environment: str
    stable_version: int
    candidate_version: int
    weight: int
    step: int
    state: CanaryState
    revision: int
    started_at: datetime
    updated_at: datetime
    updated_by: str
    step_started_at: datetime
    failures: int = 0
    reason: str = ""
    last_analysis: dict[str, Any] | None = field(default=None, compare=False)
    #: the digest of the gate report that let the promotion start (carried to the final alias move)
    gate_report_digest: str = ""
    #: the business key of the request that started the canary (a duplicate of it starts nothing)
    trigger: str | None = None
    #: the policy's step weights when the canary started; it keeps them until it ends, so a policy
    #: change mid-canary cannot move ``step`` onto another weight (empty: a record from before they were kept)
    steps: tuple[int, ...] = ()

    @property
    def active(self) -> bool:
        """True while the canary holds traffic (running or paused)."""
        return self.state in ACTIVE_STATES

    def split(self) -> TrafficSplit:
        """Return the traffic split this canary stands for."""
        if self.state == "promoted":
            return TrafficSplit(self.model, self.environment, self.candidate_version)
        if self.state == "aborted":
            return TrafficSplit(self.model, self.environment, self.stable_version)
        return TrafficSplit(self.model, self.environment, self.stable_version, self.candidate_version, self.weight)

    def step_weights(self, policy_steps: list[int] | None) -> tuple[int, ...]:
        """The weights this canary steps through: its own, else (an older record) the policy's, else none."""
        return self.steps or tuple(policy_steps or ())

    def evolve(self, *, at: datetime, by: str, **changes: Any) -> Canary:
        """Return the next revision with ``changes`` applied."""
        return replace(self, revision=self.revision + 1, updated_at=at, updated_by=by, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view (what ``canary status`` prints and the stores keep)."""
        return {
            "model": self.model,
            "environment": self.environment,
            "stable_version": self.stable_version,
            "candidate_version": self.candidate_version,
            "weight": self.weight,
            "step": self.step,
            "state": self.state,
            "revision": self.revision,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
            "step_started_at": self.step_started_at.isoformat(),
            "failures": self.failures,
            "reason": self.reason,
            "last_analysis": self.last_analysis,
            "gate_report_digest": self.gate_report_digest,
            "trigger": self.trigger,
            "steps": list(self.steps),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Canary:
        """Rebuild a canary from :meth:`to_dict`'s output (raises KeyError/ValueError on a bad record)."""
        state = str(data["state"])
        if state not in ("running", "paused", "promoted", "aborted"):
            raise ValueError(f"unknown canary state {state!r}")
        return cls(
            model=str(data["model"]),
            environment=str(data["environment"]),
            stable_version=int(data["stable_version"]),
            candidate_version=int(data["candidate_version"]),
            weight=int(data["weight"]),
            step=int(data["step"]),
            state=cast("CanaryState", state),
            revision=int(data["revision"]),
            started_at=datetime.fromisoformat(str(data["started_at"])),
            updated_at=datetime.fromisoformat(str(data["updated_at"])),
            updated_by=str(data["updated_by"]),
            step_started_at=datetime.fromisoformat(str(data["step_started_at"])),
            failures=int(data.get("failures", 0)),
            reason=str(data.get("reason", "")),
            last_analysis=data.get("last_analysis"),
            gate_report_digest=str(data.get("gate_report_digest") or ""),
            trigger=None if data.get("trigger") is None else str(data["trigger"]),
            steps=tuple(int(w) for w in data.get("steps") or ()),
        )


def replaceable(current: Canary | None, new: Canary, expected_revision: int) -> bool:
    """The compare-and-set rule every store applies before saving ``new`` over ``current``.

    ``expected_revision`` 0 starts a canary: allowed when there is none or the stored one is
    finished. Otherwise the stored canary must be the same canary (same start and candidate)
    at exactly ``expected_revision``. Raises ``ValueError`` when ``new.revision`` is not
    ``expected_revision + 1`` (a caller's bug, not a race).
    """
    if new.revision != expected_revision + 1:
        raise ValueError("canary.revision must be expected_revision + 1")
    if expected_revision == 0:
        return current is None or not current.active
    return (
        current is not None
        and current.revision == expected_revision
        and current.started_at == new.started_at
        and current.candidate_version == new.candidate_version
    )
