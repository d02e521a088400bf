"""Timer triggers → the scheduled commands.

A timer fires once per schedule occurrence, but the host may run a missed
occurrence late (``past_due``) and an operator may run it by hand (portal *Code +
Test* or ``POST /admin/functions/drift_batch`` with ``{"input": ""}``). The
business key is the kind and the minute it ran in, so a double firing within
one minute runs the batch once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.domain.commands import CheckSlos, RunDriftBatch
from modelpilot.exceptions import InvalidInput

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.commands import Command

__all__ = ["TIMER_ACTOR", "timer_command"]

TIMER_ACTOR = "system:timer"


def timer_command(kind: str, now: datetime) -> tuple[Command, str]:
    """Return the command of timer ``kind`` (``drift`` or ``slo``) and its business key."""
    key = f"timer:{kind}:{now:%Y-%m-%dT%H:%M}"
    if kind == "drift":
        return RunDriftBatch(actor=TIMER_ACTOR, end=now, trigger=key), key
    if kind == "slo":
        return CheckSlos(actor=TIMER_ACTOR, now=now, trigger=key), key
    raise InvalidInput(f"unknown timer {kind!r}; use drift or slo")
