"""Timers: the drift batch, the SLO check and the canary tick, on schedules from app settings."""

from __future__ import annotations

import azure.functions as func

from functions.azure._host import invocation
from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.azure.timers import timer_command
from modelpilot.service.dispatch import dispatch

bp = func.Blueprint()


def _run(kind: str, function: str, timer: func.TimerRequest, context: func.Context) -> None:
    with invocation(function, context, trigger="timer"):
        bus = get_bus()
        now = bus.services.clock()
        dispatch(
            bus, lambda: timer_command(kind, now, past_due=timer.past_due), function=function, source=f"timer {kind}"
        )


@bp.function_name("drift_batch")
@bp.timer_trigger(arg_name="timer", schedule="%DRIFT_SCHEDULE%", run_on_startup=False, use_monitor=True)
def drift_batch(timer: func.TimerRequest, context: func.Context) -> None:
    """Run ``RunDriftBatch`` over every monitored model and environment."""
    _run("drift", "drift_batch", timer, context)


@bp.function_name("slo_check")
@bp.timer_trigger(arg_name="timer", schedule="%SLO_SCHEDULE%", run_on_startup=False, use_monitor=True)
def slo_check(timer: func.TimerRequest, context: func.Context) -> None:
    """Run ``CheckSlos`` over every SLO."""
    _run("slo", "slo_check", timer, context)


@bp.function_name("canary_tick")
@bp.timer_trigger(arg_name="timer", schedule="%CANARY_SCHEDULE%", run_on_startup=False, use_monitor=True)
def canary_tick(timer: func.TimerRequest, context: func.Context) -> None:
    """Run ``AdvanceCanaries``: analyse the due canaries, then advance, hold or abort each."""
    _run("canary", "canary_tick", timer, context)
