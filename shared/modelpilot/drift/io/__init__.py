"""Readers of capture data (CSV, JSON Lines, SageMaker data capture, Parquet) through the ``ArtifactStore`` port.

They stream files in chunks into the engine's :class:`~modelpilot.drift.frames.Chunk`; :class:`.stats.ReadStats`
counts what was read and what was corrupt.
"""

from __future__ import annotations

from modelpilot.drift.io.readers import FORMATS, detect_format, read_capture
from modelpilot.drift.io.stats import ReadStats

__all__ = ["FORMATS", "ReadStats", "detect_format", "read_capture"]
