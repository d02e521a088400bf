"""The quality batch: an hourly timer, and label files landing under feedback/ in the models container."""

from __future__ import annotations

import azure.functions as func

from modelpilot.bootstrap import get_bus
from modelpilot.config import Settings
from modelpilot.entrypoints.azure.quality import feedback_translation, quality_timer
from modelpilot.entrypoints.azure.runtime import run_event
from modelpilot.service.dispatch import dispatch

bp = func.Blueprint()

#: NCRONTAB: every hour at minute 30 (after the hour's captures and a drift batch on the hour)
SCHEDULE = "0 30 * * * *"


@bp.function_name("quality_batch")
@bp.timer_trigger(arg_name="timer", schedule=SCHEDULE, run_on_startup=False, use_monitor=True)
def quality_batch(timer: func.TimerRequest) -> None:
    """Run ``RunQualityBatch`` over every model with a quality policy."""
    bus = get_bus()
    now = bus.services.clock()
    dispatch(bus, lambda: quality_timer(now, past_due=timer.past_due), function="quality_batch", source="timer quality")


@bp.function_name("quality_feedback")
@bp.event_grid_trigger(arg_name="event")
def quality_feedback(event: func.EventGridEvent) -> None:
    """``Microsoft.Storage.BlobCreated`` of a label file → the quality batch of its window."""
    container = Settings.from_env().azure_container
    run_event(event, "quality_feedback", lambda env: feedback_translation(env, container=container))
