"""Timer triggers → the scheduled commands.

A timer fires once per schedule occurrence, but the host may run a missed
occurrence late (``past_due``) and an operator may run it by hand (portal *Code +
Test* or ``POST /admin/functions/drift_batch`` with ``{"input": ""}``). The
business key is the kind and the minute it ran in, so a double firing within
one minute runs the batch once. The command's time is that minute too, so a retry
of the occurrence judges the same window and the same live version as the first
attempt did (an SLO check retried after its rollback does not blame the version
rolled back to). A window fanned out to a Durable orchestration
is started under the window's own instance id, so a later duplicate starts it
once too.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from modelpilot.domain.commands import AdvanceCanaries, CheckSlos, RunDriftBatch
from modelpilot.exceptions import InvalidInput
from modelpilot.service.dispatch import Delivery

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.service.messagebus import Services

__all__ = ["TIMER_ACTOR", "timer_command", "with_durable_client"]

TIMER_ACTOR = "system:timer"


def timer_command(kind: str, now: datetime, *, past_due: bool = False) -> Delivery:
    """Return the command of timer ``kind`` (``drift``, ``slo`` or ``canary``) firing at ``now``, keyed by kind
    and minute."""
    now = now.replace(second=0, microsecond=0)
    key = f"timer:{kind}:{now:%Y-%m-%dT%H:%M}"
    source = f"timer {kind}" + (" (past due)" if past_due else "")
    if kind == "drift":
        return Delivery(source, RunDriftBatch(actor=TIMER_ACTOR, end=now, trigger=key), key)
    if kind == "slo":
        return Delivery(source, CheckSlos(actor=TIMER_ACTOR, now=now, trigger=key), key)
    if kind == "canary":
        return Delivery(source, AdvanceCanaries(actor=TIMER_ACTOR, trigger=key), key)
    raise InvalidInput(f"unknown timer {kind!r}; use drift, slo or canary")


def with_durable_client(svc: Services, client: Any) -> AbstractContextManager[None]:
    """Return the context in which the drift fan-out starts orchestrations through ``client``.

    ``client`` is the Durable client binding of this invocation; enter the context on the
    invocation's event loop (the starter hands its calls back to it). Without a fan-out
    starter every window is read inline.
    """
    starter = svc.drift_fanout
    return starter.bound(client) if starter is not None else nullcontext()
