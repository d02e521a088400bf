"""The ``drift`` block of the policy file: thresholds, methods, data-quality limits.

Owned by the drift engine; see ``modelpilot.drift``. Example::

    drift:
      environments: [staging, prod]
      window: 24h
      numeric_method: wasserstein        # effect size for numeric features
      categorical_method: jensen_shannon # effect size for categorical features
      thresholds: {wasserstein: 0.1, jensen_shannon: 0.1, psi: 0.2}
      correction: benjamini_hochberg     # or bonferroni, none
      alpha: 0.05
      features:
        monthly_charges: {method: psi, threshold: 0.25, critical: true}
      critical_features: [tenure_months]
      severity: {warning_share: 0.0, critical_share: 0.5}
      quality: {max_missing_rate: 0.1, max_out_of_bounds_rate: 0.01}
      max_corrupt_share: 0.05
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelpilot.domain.durations import parse_duration
from modelpilot.policy.base import Strict

__all__ = [
    "MAX_WINDOW_SECONDS",
    "MIN_WINDOW_SECONDS",
    "DriftPolicy",
    "FeatureDriftRule",
    "QualityThresholds",
    "SeverityRules",
    "check_window",
]

Method = Literal["wasserstein", "jensen_shannon", "psi", "hellinger", "ks", "linf"]
NUMERIC_METHODS = {"wasserstein", "jensen_shannon", "psi", "hellinger", "ks"}
CATEGORICAL_METHODS = {"jensen_shannon", "psi", "hellinger", "linf"}


class FeatureDriftRule(Strict):
    """Per-feature override: effect-size method and threshold, criticality, or no check at all."""

    method: Method | None = None
    threshold: float | None = Field(default=None, gt=0)
    critical: bool = False
    ignore: bool = False


class SeverityRules(Strict):
    """Dataset severity from the share of drifted features (critical features make it critical)."""

    warning_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of drifted features for 'warning' (0 = any drifted feature)",
    )
    critical_share: float = Field(default=0.5, ge=0, le=1, description="share of drifted features for 'critical'")


class QualityThresholds(Strict):
    """Data-quality limits per feature (rates over the window's rows); a breach raises a warning."""

    max_missing_rate: float = Field(default=0.1, ge=0, le=1)
    max_out_of_bounds_rate: float = Field(default=0.01, ge=0, le=1)
    max_type_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_unseen_rate: float = Field(default=0.05, ge=0, le=1)
    missing_columns: Literal["ignore", "warning", "critical"] = "critical"
    extra_columns: Literal["ignore", "warning"] = "ignore"


#: the shortest and the longest drift window: a longer one lists more capture prefixes than a batch can read
MIN_WINDOW_SECONDS = 60
MAX_WINDOW_SECONDS = 366 * 86400


def check_window(value: object) -> int:
    """Return a drift window in seconds; ``ValueError`` naming the allowed range when it is outside it."""
    allowed = "a drift window must be between 1m and 366d"
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}; {allowed}") from None
    if not MIN_WINDOW_SECONDS <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError(f"{allowed}, not {str(value)[:40]}")
    return seconds


class DriftPolicy(BaseModel):
    """How a model's capture data is compared with its reference profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environments: list[str] = Field(default_factory=list, description="environments monitored; empty = all")
    window: str = Field(default="24h", description="length of the capture window checked by each batch")
    critical_features: list[str] = Field(default_factory=list)
    numeric_method: Method = "wasserstein"
    categorical_method: Method = "jensen_shannon"
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {
            "wasserstein": 0.1,
            "jensen_shannon": 0.1,
            "psi": 0.2,
            "hellinger": 0.1,
            "ks": 0.1,
            "linf": 0.1,
        },
        description="effect-size threshold per method (merged over the defaults)",
    )
    correction: Literal["benjamini_hochberg", "bonferroni", "none"] = "benjamini_hochberg"
    alpha: float = Field(default=0.05, gt=0, lt=1, description="significance level after correction")
    bins: int = Field(default=1000, ge=10, le=100_000, description="fine reference-quantile bins per numeric feature")
    psi_bins: int = Field(default=10, ge=2, le=1000, description="equal-mass bins for PSI, JS and Hellinger")
    top_k: int = Field(default=100, ge=1, le=10_000, description="categorical values kept individually")
    features: dict[str, FeatureDriftRule] = Field(default_factory=dict)
    severity: SeverityRules = Field(default_factory=SeverityRules)
    quality: QualityThresholds = Field(default_factory=QualityThresholds)
    max_corrupt_share: float = Field(
        default=0.05, ge=0, le=1, description="share of corrupt records above which the batch fails"
    )

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        check_window(value)
        return value

    @field_validator("numeric_method")
    @classmethod
    def _numeric(cls, value: str) -> str:
        if value not in NUMERIC_METHODS:
            raise ValueError(f"numeric_method must be one of {sorted(NUMERIC_METHODS)}")
        return value

    @field_validator("categorical_method")
    @classmethod
    def _categorical(cls, value: str) -> str:
        if value not in CATEGORICAL_METHODS:
            raise ValueError(f"categorical_method must be one of {sorted(CATEGORICAL_METHODS)}")
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        known = NUMERIC_METHODS | CATEGORICAL_METHODS
        for key, number in value.items():
            if key not in known:
                raise ValueError(f"unknown method {key!r}; use one of {sorted(known)}")
            if not number > 0:
                raise ValueError(f"threshold of {key} must be > 0")
        defaults = {
            "wasserstein": 0.1,
            "jensen_shannon": 0.1,
            "psi": 0.2,
            "hellinger": 0.1,
            "ks": 0.1,
            "linf": 0.1,
        }
        return {**defaults, **value}

    @property
    def window_seconds(self) -> int:
        """The window as seconds."""
        return int(parse_duration(self.window))

    def rule_for(self, feature: str, kind: str) -> tuple[str, float, bool, bool]:
        """Return ``(method, threshold, critical, ignored)`` for a feature of ``kind``."""
        rule = self.features.get(feature, FeatureDriftRule())
        method = rule.method or (self.numeric_method if kind == "numeric" else self.categorical_method)
        if kind == "categorical" and method not in CATEGORICAL_METHODS:
            method = self.categorical_method
        if kind == "numeric" and method not in NUMERIC_METHODS:
            method = self.numeric_method
        threshold = rule.threshold if rule.threshold is not None else self.thresholds[method]
        return method, threshold, rule.critical or feature in self.critical_features, rule.ignore
