"""``modelpilot demo``: the whole lifecycle on three real (tiny) models, told as a timeline.

* :mod:`.story` — the steps in order and :func:`run_demo`;
* :mod:`.context` — the simulated clock, the timeline and the people's actions;
* :mod:`.data` — synthetic churn data, the numpy models and their packages;
* :mod:`.drift`, :mod:`.slo` — the drift batch and the SLO-driven automatic rollback.
"""

from __future__ import annotations

from modelpilot.demo.story import run_demo

__all__ = ["run_demo"]
