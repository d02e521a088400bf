"""The drift and data-quality engine: numpy kernels, mergeable profiles, metrics, verdicts, reports.

Importing this package imports numpy; the service layer imports it only inside
the drift handlers. Entry points:

* :func:`build_reference` — a reference profile from an in-memory frame or chunks;
* :class:`ProfileAccumulator` — bins a current window into a reference's edges;
* :meth:`Profile.merge` — merges profiles of chunks, files or workers by addition;
* :func:`compare_profiles` / :func:`compare_frames` — the :class:`DriftReport`;
* :func:`render_html` — the self-contained HTML report;
* :func:`read_capture` — streams CSV, JSON Lines, SageMaker data capture and Parquet.
"""

from __future__ import annotations

from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.engine import compare_frames, compare_profiles
from modelpilot.drift.frames import Categorical, Chunk
from modelpilot.drift.html import render_html
from modelpilot.drift.profile import CategoricalProfile, NumericProfile, Profile
from modelpilot.drift.readers import ReadStats, read_capture
from modelpilot.drift.report import DriftReport, report_schema

__all__ = [
    "Categorical",
    "CategoricalProfile",
    "Chunk",
    "DriftReport",
    "NumericProfile",
    "Profile",
    "ProfileAccumulator",
    "ReadStats",
    "build_reference",
    "compare_frames",
    "compare_profiles",
    "read_capture",
    "render_html",
    "report_schema",
]
