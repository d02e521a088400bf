"""The one strict base model every policy block derives from: unknown keys are errors, values are frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict"]


class Strict(BaseModel):
    """A policy block: ``extra="forbid"`` (a typo is an error naming the field) and immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)
