"""SLO handlers (filled in by the SLO engine)."""

from __future__ import annotations

from typing import Any


def on_drift_detected(event: Any, bus: Any) -> None:
    """React to drift (rollback policy)."""
    return None


def on_slo_burn_alert(event: Any, bus: Any) -> None:
    """React to an SLO burn alert (rollback policy)."""
    return None
