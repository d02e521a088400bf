"""The ``slos`` and ``rollback`` blocks of the policy file.

Owned by the SLO engine; see ``modelpilot.slo``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RollbackPolicy", "SloSpec"]


class SloSpec(BaseModel):
    """One service-level objective of a model in an environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    environment: str
    objective: float = Field(gt=0, lt=1)


class RollbackPolicy(BaseModel):
    """Which alerts roll an environment back automatically."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    on_slo_page: bool = False
    on_critical_drift: bool = False
    alarms: list[str] = Field(default_factory=list)
    cooldown: str = "1h"
