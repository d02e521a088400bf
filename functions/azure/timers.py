"""Timers: the drift batch and the SLO check, on schedules from app settings."""

from __future__ import annotations

import azure.functions as func

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.azure.timers import timer_command
from modelpilot.service.dispatch import dispatch

bp = func.Blueprint()


@bp.function_name("drift_batch")
@bp.timer_trigger(arg_name="timer", schedule="%DRIFT_SCHEDULE%", run_on_startup=False, use_monitor=True)
def drift_batch(timer: func.TimerRequest) -> None:
    """Run ``RunDriftBatch`` over every monitored model and environment."""
    bus = get_bus()
    dispatch(
        bus,
        lambda: timer_command("drift", bus.services.clock()),
        function="drift_batch",
        source="timer drift_batch" + (" (past due)" if timer.past_due else ""),
    )


@bp.function_name("slo_check")
@bp.timer_trigger(arg_name="timer", schedule="%SLO_SCHEDULE%", run_on_startup=False, use_monitor=True)
def slo_check(timer: func.TimerRequest) -> None:
    """Run ``CheckSlos`` over every SLO."""
    bus = get_bus()
    dispatch(
        bus,
        lambda: timer_command("slo", bus.services.clock()),
        function="slo_check",
        source="timer slo_check" + (" (past due)" if timer.past_due else ""),
    )
