"""Timers: the drift batch, the SLO check and the canary tick, on schedules from app settings.

The drift timer comes in two forms, one registered: :data:`drift_bp` reads every window inline;
with the Durable fan-out on (``MODELPILOT_AZURE_DURABLE_DRIFT=true``), :func:`durable_drift_bp`
adds a Durable client binding, which starts a ``drift_window`` orchestration for a window above
``MODELPILOT_DRIFT_FANOUT_BYTES`` (docs/scale.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

import azure.functions as func

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.azure.runtime import run_timer
from modelpilot.entrypoints.azure.timers import with_durable_client

bp = func.Blueprint()
drift_bp = func.Blueprint()


@drift_bp.function_name("drift_batch")
@drift_bp.timer_trigger(arg_name="timer", schedule="%DRIFT_SCHEDULE%", run_on_startup=False, use_monitor=True)
def drift_batch(timer: func.TimerRequest, context: func.Context) -> None:
    """Run ``RunDriftBatch`` over every monitored model and environment."""
    run_timer("drift", "drift_batch", timer, context)


def durable_drift_bp() -> Any:
    """Return the blueprint of the drift timer with a Durable client binding (imports the Durable SDK)."""
    import azure.durable_functions as df

    durable = df.Blueprint()

    @durable.function_name("drift_batch")
    @durable.timer_trigger(arg_name="timer", schedule="%DRIFT_SCHEDULE%", run_on_startup=False, use_monitor=True)
    @durable.durable_client_input(client_name="client")
    async def drift_batch_durable(timer: func.TimerRequest, context: func.Context, client: Any) -> None:
        """Run ``RunDriftBatch``; a window above the threshold starts its orchestration through ``client``."""
        with with_durable_client(get_bus().services, client):
            await asyncio.to_thread(run_timer, "drift", "drift_batch", timer, context)

    return durable


@bp.function_name("slo_check")
@bp.timer_trigger(arg_name="timer", schedule="%SLO_SCHEDULE%", run_on_startup=False, use_monitor=True)
def slo_check(timer: func.TimerRequest, context: func.Context) -> None:
    """Run ``CheckSlos`` over every SLO."""
    run_timer("slo", "slo_check", timer, context)


@bp.function_name("canary_tick")
@bp.timer_trigger(arg_name="timer", schedule="%CANARY_SCHEDULE%", run_on_startup=False, use_monitor=True)
def canary_tick(timer: func.TimerRequest, context: func.Context) -> None:
    """Run ``AdvanceCanaries``: analyse the due canaries, then advance, hold or abort each."""
    run_timer("canary", "canary_tick", timer, context)
