"""Drift handlers (filled in by the drift engine)."""

from __future__ import annotations

from typing import Any


def on_model_registered(event: Any, bus: Any) -> None:
    """React to a registration (builds the reference profile once the drift engine exists)."""
    return None
