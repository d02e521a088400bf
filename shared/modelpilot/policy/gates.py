"""The promotion gates of one environment: thresholds, no regression, soak, approvals, monitor health."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modelpilot.domain.durations import parse_duration
from modelpilot.policy.base import Strict
from modelpilot.policy.canary import CanaryPolicy

__all__ = ["EnvironmentGates", "MetricThreshold", "RegressionRule"]

_THRESHOLD = re.compile(r"^\s*([A-Za-z0-9_.:/-]+)\s*(>=|<=|>|<|==)\s*(-?\d+(?:\.\d+)?(?:[eE]-?\d+)?)\s*$")


class MetricThreshold(Strict):
    """An absolute bound on one evaluation metric, e.g. ``auc >= 0.80``.

    May be written as a string (``"auc >= 0.80"``) or a mapping.
    """

    metric: str
    op: Literal[">=", ">", "<=", "<", "=="]
    value: float

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        if isinstance(data, str):
            match = _THRESHOLD.match(data)
            if not match:
                raise ValueError(f"invalid threshold {data!r}: write it as '<metric> <op> <number>', e.g. 'auc >= 0.8'")
            return {"metric": match.group(1), "op": match.group(2), "value": float(match.group(3))}
        return data

    def holds(self, observed: float) -> bool:
        """Return True when ``observed`` satisfies the bound."""
        return {
            ">=": observed >= self.value,
            ">": observed > self.value,
            "<=": observed <= self.value,
            "<": observed < self.value,
            "==": observed == self.value,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


class RegressionRule(Strict):
    """No-regression rule against the version currently in the environment.

    The semantics of MLflow's ``MetricThreshold``: with ``greater_is_better`` the
    candidate must reach ``baseline + min_absolute_change`` and
    ``baseline * (1 + min_relative_change)`` (for lower-is-better metrics the signs
    flip). A negative change is a tolerance: ``min_absolute_change: -0.005`` allows
    the candidate to be up to 0.005 worse.
    """

    metric: str
    greater_is_better: bool = True
    min_absolute_change: float | None = 0.0
    min_relative_change: float | None = None


class EnvironmentGates(Strict):
    """The gates a version passes to enter one environment."""

    thresholds: list[MetricThreshold] = Field(default_factory=list)
    no_regression: list[RegressionRule] = Field(default_factory=list)
    soak: int | None = Field(
        default=None, description="minimum time in the previous environment, e.g. '1h' (seconds when a number)"
    )
    approvals: int = Field(default=0, ge=0, description="approvals required from people other than the registrant")
    four_eyes: bool = Field(default=True, description="the registrant's own approval does not count")
    approvers: list[str] = Field(
        default_factory=list, description="glob patterns of actors allowed to approve; empty = anyone"
    )
    require_no_drift_alert: bool = False
    require_slo_healthy: bool = False
    require_quality_healthy: bool = False
    canary: CanaryPolicy | None = Field(
        default=None, description="enter the environment in traffic steps with an analysis between them"
    )

    @field_validator("soak", mode="before")
    @classmethod
    def _soak(cls, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
