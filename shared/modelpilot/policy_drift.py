"""The ``drift`` block of the policy file: thresholds, methods, data-quality limits.

Owned by the drift engine; see ``modelpilot.drift``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DriftPolicy"]


class DriftPolicy(BaseModel):
    """How a model's capture data is compared with its reference profile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environments: list[str] = Field(default_factory=list, description="environments monitored; empty = all")
    window: str = Field(default="24h", description="length of the capture window checked by each batch")
    critical_features: list[str] = Field(default_factory=list)
