"""Helpers for the drift unit tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.profile import NumericProfile


def numeric_pair(reference: np.ndarray, current: np.ndarray, *, bins: int = 1000) -> tuple[NumericProfile, Any]:
    """Return the reference and current profiles of one numeric column."""
    ref = build_reference({"x": reference}, bins=bins)
    cur = ProfileAccumulator(ref).add_all({"x": current})
    return ref.features["x"], cur.features["x"]  # type: ignore[return-value]
