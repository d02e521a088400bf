"""The drift and data-quality engine: numpy kernels, mergeable profiles, metrics, verdicts, reports.

Pure computation on in-memory arrays: no I/O. Importing it imports numpy; the service layer
imports it only inside the drift handlers. The readers that stream files into it live in
:mod:`modelpilot.drift.io`. Entry points:

* :func:`build_reference` — a reference profile from an in-memory frame or chunks;
* :class:`ProfileAccumulator` — bins a current window into a reference's edges;
* :meth:`Profile.merge` — merges profiles of chunks, files or workers by addition;
* :func:`compare_profiles` / :func:`compare_frames` — the :class:`DriftReport`;
* :func:`render_html` — the self-contained HTML report;
"""

from __future__ import annotations

from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.engine import compare_frames, compare_profiles
from modelpilot.drift.frames import Categorical, Chunk
from modelpilot.drift.html import render_html
from modelpilot.drift.profile import CategoricalProfile, NumericProfile, Profile
from modelpilot.drift.report import DriftReport, report_schema

__all__ = [
    "Categorical",
    "CategoricalProfile",
    "Chunk",
    "DriftReport",
    "NumericProfile",
    "Profile",
    "ProfileAccumulator",
    "build_reference",
    "compare_frames",
    "compare_profiles",
    "render_html",
    "report_schema",
]
