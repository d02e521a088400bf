"""Timer triggers → the scheduled commands.

A timer fires once per schedule occurrence, but the host may run a missed
occurrence late (``past_due``) and an operator may run it by hand (portal *Code +
Test* or ``POST /admin/functions/drift_batch`` with ``{"input": ""}``). The
business key is the kind and the minute it ran in, so a double firing within
one minute runs the batch once. The command's time is that minute too, so a retry
of the occurrence judges the same window and the same live version as the first
attempt did (an SLO check retried after its rollback does not blame the version
rolled back to).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.domain.commands import CheckSlos, RunDriftBatch
from modelpilot.exceptions import InvalidInput
from modelpilot.service.dispatch import Delivery

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["TIMER_ACTOR", "timer_command"]

TIMER_ACTOR = "system:timer"


def timer_command(kind: str, now: datetime, *, past_due: bool = False) -> Delivery:
    """Return the command of timer ``kind`` (``drift`` or ``slo``) firing at ``now``, keyed by kind and minute."""
    now = now.replace(second=0, microsecond=0)
    key = f"timer:{kind}:{now:%Y-%m-%dT%H:%M}"
    source = f"timer {kind}" + (" (past due)" if past_due else "")
    if kind == "drift":
        return Delivery(source, RunDriftBatch(actor=TIMER_ACTOR, end=now, trigger=key), key)
    if kind == "slo":
        return Delivery(source, CheckSlos(actor=TIMER_ACTOR, now=now, trigger=key), key)
    raise InvalidInput(f"unknown timer {kind!r}; use drift or slo")
