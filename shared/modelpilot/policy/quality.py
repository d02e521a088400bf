"""The ``quality`` and ``attribution`` blocks of the policy file: model quality and explainability monitoring.

See ``docs/quality.md``. Example::

    quality:
      task: binary                       # binary | multiclass | regression
      environments: [prod]
      window: 24h                        # windows are aligned to multiples of this length (UTC)
      lookback: 7d                       # earlier windows re-joined as late labels arrive
      positive_label: "1"
      columns: {id: inference_id, score: score, prediction: prediction, label: label}
      slices: [plan]
      min_labelled_rows: 200
      min_coverage: 0.5                  # share of predictions with a label
      thresholds:
        - {metric: roc_auc, min: 0.75}                   # absolute
        - {metric: accuracy, max_drop: 0.05}             # at most 0.05 below the reference
        - {metric: log_loss, max_rise: 0.2, relative: true}   # at most 20 % above the reference
      rollback: true                     # a critical breach rolls back (the environment's rollback rules)
    attribution:
      threshold: 0.9                     # NDCG below this alerts
      top_k: 10
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modelpilot.domain.durations import parse_duration
from modelpilot.policy.base import Strict

__all__ = [
    "CLASSIFIER_METRICS",
    "ESTIMATED_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSOR_METRICS",
    "AttributionPolicy",
    "QualityColumns",
    "QualityPolicy",
    "QualityRule",
]

CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "calibration_error")
REGRESSOR_METRICS = ("mae", "rmse", "mape")
#: metrics the confidence-based estimation gives before labels arrive (binary classifiers)
ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
LOWER_IS_BETTER = frozenset({"log_loss", "calibration_error", "mae", "rmse", "mape"})


def _duration(value: Any) -> str:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return str(value)


class QualityRule(Strict):
    """A bound on one quality metric: absolute (``min``/``max``) or against the reference (``max_drop``/
    ``max_rise``, in the metric's units, or as a fraction of the reference value with ``relative: true``)."""

    metric: str
    min: float | None = None
    max: float | None = None
    max_drop: float | None = Field(default=None, ge=0)
    max_rise: float | None = Field(default=None, ge=0)
    relative: bool = False
    severity: Literal["warning", "critical"] = "critical"

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        known = (*CLASSIFIER_METRICS, *REGRESSOR_METRICS)
        if value not in known:
            raise ValueError(f"unknown quality metric {value!r}; use one of {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _some_bound(self) -> QualityRule:
        if self.min is None and self.max is None and self.max_drop is None and self.max_rise is None:
            raise ValueError(f"rule for {self.metric} needs min, max, max_drop or max_rise")
        return self

    @property
    def against_reference(self) -> bool:
        """True when the rule compares with the reference's value."""
        return self.max_drop is not None or self.max_rise is not None

    def __str__(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        unit = " of the reference" if self.relative else ""
        if self.max_drop is not None:
            parts.append(f"drop <= {self.max_drop:g}{unit}")
        if self.max_rise is not None:
            parts.append(f"rise <= {self.max_rise:g}{unit}")
        return f"{self.metric} " + ", ".join(parts)


class QualityColumns(Strict):
    """Where the quality batch finds things: in the capture (id, score, predicted class or value, version,
    attributions) and in the feedback files (id, label)."""

    id: str = Field(default="inference_id", description="inference id, in the captures and the feedback files")
    score: str = Field(default="score", description="the positive-class probability (binary classifiers)")
    prediction: str = Field(default="prediction", description="the predicted class or value")
    label: str = Field(default="label", description="the ground truth, in the feedback files")
    version: str = Field(default="model_version", description="the model version that answered, when captured")
    attribution_prefix: str = Field(default="attribution.", description="capture columns <prefix><feature>")
    output: list[str] = Field(
        default_factory=lambda: ["score"],
        description="SageMaker capture: names of the endpoint output's CSV fields, in order",
    )


class QualityPolicy(Strict):
    """How a model's predictions are joined with their late labels and judged."""

    task: Literal["binary", "multiclass", "regression"] = "binary"
    environments: list[str] = Field(default_factory=list, description="environments monitored; empty = all")
    window: str = Field(default="24h", description="window length; windows are aligned to multiples of it")
    lookback: str = Field(default="7d", description="how far back a scheduled run re-joins windows for late labels")
    label_delay: str = Field(
        default="3d", description="labels are due this long after a window ends; coverage is judged after that"
    )
    positive_label: str = "1"
    decision_threshold: float = Field(
        default=0.5, ge=0, le=1, description="score at or above which a binary model predicts the positive class"
    )
    columns: QualityColumns = Field(default_factory=QualityColumns)
    slices: list[str] = Field(default_factory=list, description="capture columns to break the metrics down by")
    max_slice_values: int = Field(default=50, ge=1, le=1000, description="values kept per slice column")
    min_labelled_rows: int = Field(default=100, ge=1, description="labelled rows a realised metric needs")
    min_coverage: float = Field(default=0.0, ge=0, le=1, description="share of predictions that must have a label")
    thresholds: list[QualityRule] = Field(default_factory=list)
    estimate: bool = Field(default=True, description="estimate binary metrics before labels (CBPE)")
    band_z: float = Field(default=3.0, gt=0, description="half-width of the estimate's band, in standard deviations")
    max_unsupported_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="share of scores outside the reference's support that makes the estimate unreliable",
    )
    prediction_drift: bool = Field(default=True, description="compare score/prediction distributions (drift engine)")
    rollback: bool = Field(default=False, description="a critical breach rolls the environment back")
    max_corrupt_share: float = Field(default=0.05, ge=0, le=1)

    _d = field_validator("window", "lookback", "label_delay")(lambda v: _duration(v))

    @field_validator("positive_label", mode="before")
    @classmethod
    def _label(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _consistent(self) -> QualityPolicy:
        if self.window_seconds % 3600:
            raise ValueError("quality window must be a whole number of hours")
        allowed = REGRESSOR_METRICS if self.task == "regression" else CLASSIFIER_METRICS
        for rule in self.thresholds:
            if rule.metric not in allowed:
                raise ValueError(f"metric {rule.metric} does not apply to a {self.task} model")
        return self

    @property
    def window_seconds(self) -> int:
        """The window in seconds."""
        return parse_duration(self.window)

    @property
    def label_delay_seconds(self) -> int:
        """The label delay in seconds."""
        return parse_duration(self.label_delay)

    @property
    def lookback_seconds(self) -> int:
        """The lookback in seconds."""
        return parse_duration(self.lookback)


class AttributionPolicy(Strict):
    """Feature-attribution drift: NDCG of the window's mean |attribution| ranking against the reference's."""

    environments: list[str] = Field(default_factory=list, description="environments monitored; empty = all")
    threshold: float = Field(default=0.9, gt=0, le=1, description="NDCG below this is a breach (Clarify: 0.9)")
    top_k: int | None = Field(default=None, ge=1, description="features ranked (default: all)")
    min_rows: int = Field(default=100, ge=1, description="rows with attributions the comparison needs")
    severity: Literal["warning", "critical"] = "warning"
    hook: str | None = Field(
        default=None,
        description="'module:function' computing attributions of a sample when the capture has none",
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
    )
    sample_rows: int = Field(default=1000, ge=1, le=1_000_000, description="rows the hook explains per window")
