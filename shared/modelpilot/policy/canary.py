"""The ``canary`` block of an environment: promote in traffic steps, with an analysis between steps.

Modelled on Argo Rollouts' canary steps and ``AnalysisTemplate``::

    environments:
      prod:
        canary:
          steps: [5, 25, 50, 100]     # the candidate's weight per step, strictly increasing, ending at 100
          interval: 10m               # how long each step runs before its analysis
          min_samples: 200            # fewer requests of either version in the window: inconclusive (hold)
          failure_limit: 1            # failed analyses tolerated per step; one more aborts
          analysis:
            - name: error-ratio       # candidate's minus stable's error ratio must stay <= threshold
              threshold: 0.01
            - name: latency
              slo: latency            # the SLI of this model's SLO ``latency`` in the environment
              threshold: 0.02

Every metric compares the **bad-event ratio** (``1 - good / total``) of the candidate with
the stable version's over the step's window, through the SLI's metrics source with
``$version`` (and the ``version`` label) set to each version in turn. Without ``slo`` or
``sli`` a metric counts the local telemetry store's ``requests.error`` over ``requests``.
An empty ``analysis`` means that one default error-ratio metric. A metric of ``kind: drift``
compares the candidate's own captured traffic with its reference profile instead (docs/canary.md)::

            - {name: drift, kind: drift, max_severity: warning, threshold: 0.25}
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modelpilot.domain.durations import format_duration, parse_duration
from modelpilot.policy.base import Strict
from modelpilot.policy.sli import MetricQuery, SliSpec

__all__ = ["DEFAULT_ERROR_SLI", "CanaryMetric", "CanaryPolicy"]

#: the error ratio of the local telemetry store: 5xx answers over all requests, per version
DEFAULT_ERROR_SLI = SliSpec(
    kind="ratio", source="local", bad=MetricQuery(query="requests.error"), total=MetricQuery(query="requests")
)
#: at most this many steps and metrics (each metric costs two queries per analysis)
MAX_STEPS = 20
MAX_METRICS = 10


class CanaryMetric(Strict):
    """One metric of a canary analysis.

    ``kind: ratio`` (the default): the candidate's bad ratio may exceed the stable one's by ``threshold``.
    ``kind: drift``: the candidate's captured traffic is compared with its reference profile by the drift
    engine; the metric fails when the report's severity is above ``max_severity`` (default ``warning``,
    so a critical drift fails) or, with ``threshold``, when more than that share of the features drifted.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="the metric's name in reports")
    kind: Literal["ratio", "drift"] = Field(default="ratio", description="compare bad-event ratios, or drift")
    threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="ratio: largest allowed (candidate - stable) bad-event ratio (required); "
        "drift: largest allowed share of drifted features (optional)",
    )
    slo: str | None = Field(default=None, description="use the SLI of this SLO (same model and environment)")
    sli: SliSpec | None = Field(default=None, description="an SLI of its own (ratio or threshold kind)")
    max_severity: Literal["none", "warning", "critical"] | None = Field(
        default=None, description="drift: the highest report severity that still passes (default warning)"
    )

    @property
    def limit(self) -> float:
        """The threshold the comparison reports (a drift metric without one allows any share)."""
        return 1.0 if self.threshold is None else self.threshold

    @model_validator(mode="after")
    def _one_source(self) -> CanaryMetric:
        if self.kind == "drift":
            if self.slo is not None or self.sli is not None:
                raise ValueError(
                    f"canary metric {self.name}: a drift metric reads the candidate's captured traffic; "
                    "leave out slo and sli"
                )
            return self
        if self.threshold is None:
            raise ValueError(f"canary metric {self.name}: threshold is required (largest allowed ratio difference)")
        if self.max_severity is not None:
            raise ValueError(f"canary metric {self.name}: max_severity is for kind: drift")
        if self.slo is not None and self.sli is not None:
            raise ValueError(f"canary metric {self.name}: give slo or sli, not both")
        if self.sli is not None and self.sli.kind == "quality":
            raise ValueError(
                f"canary metric {self.name}: a quality SLI is judged per timeslice; use a ratio or threshold SLI"
            )
        return self


class CanaryPolicy(Strict):
    """How an environment takes a new version: traffic steps and the analysis that gates each step."""

    steps: list[int] = Field(min_length=1, max_length=MAX_STEPS, description="candidate weights in percent")
    interval: int = Field(description="how long each step runs before its analysis, e.g. '10m'")
    analysis: list[CanaryMetric] = Field(default_factory=list, max_length=MAX_METRICS)
    min_samples: int = Field(default=100, ge=1, description="requests each version needs in the window")
    failure_limit: int = Field(default=0, ge=0, description="failed analyses tolerated per step before abort")

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> int:
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if seconds < 60:
            raise ValueError(f"interval {format_duration(seconds)} is too short: at least 1m")
        return seconds

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[int]) -> list[int]:
        for weight in value:
            if not 1 <= weight <= 100:
                raise ValueError(f"step weight {weight} must be 1..100 (percent of traffic)")
        if any(b <= a for a, b in pairwise(value)):
            raise ValueError(f"steps {value} must be strictly increasing")
        if value[-1] != 100:
            raise ValueError(f"the last step must be 100 (full traffic), got {value[-1]}")
        if len(value) < 2:
            raise ValueError("a canary needs a step below 100 before 100; leave out canary for a direct promotion")
        return value

    @model_validator(mode="after")
    def _unique_metrics(self) -> CanaryPolicy:
        names = [m.name for m in self.analysis]
        if len(set(names)) != len(names):
            raise ValueError(f"canary analysis metric names must be unique, got {names}")
        return self

    def metrics(self) -> list[CanaryMetric]:
        """The analysis metrics; the default error ratio when none is given."""
        return list(self.analysis) or [CanaryMetric(name="error-ratio", threshold=0.01)]
