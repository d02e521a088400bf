"""Azure ML registry events: a registered model → register; a model-monitor breach → alarm."""

from __future__ import annotations

import azure.functions as func

from modelpilot.entrypoints.azure.events import alarm_command, model_registered_command
from modelpilot.entrypoints.azure.runtime import run_event

bp = func.Blueprint()


@bp.function_name("azureml_model_registered")
@bp.event_grid_trigger(arg_name="event")
def azureml_model_registered(event: func.EventGridEvent, context: func.Context) -> None:
    """``Microsoft.MachineLearningServices.ModelRegistered`` → ``RegisterModel``."""
    run_event(event, "azureml_model_registered", model_registered_command, context)


@bp.function_name("azureml_monitor_alarm")
@bp.event_grid_trigger(arg_name="event")
def azureml_monitor_alarm(event: func.EventGridEvent, context: func.Context) -> None:
    """``RunCompleted`` of a model-monitor run, or ``DatasetDriftDetected`` → ``HandleAlarm``."""
    run_event(event, "azureml_monitor_alarm", alarm_command, context)
