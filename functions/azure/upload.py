"""Model upload: a ``modelpilot.json`` lands in the models container → register and auto-promote."""

from __future__ import annotations

from functions.azure._host import run_event

import azure.functions as func
from modelpilot.config import Settings
from modelpilot.entrypoints.azure_events import upload_command

bp = func.Blueprint()


@bp.function_name("model_upload")
@bp.event_grid_trigger(arg_name="event")
def model_upload(event: func.EventGridEvent) -> None:
    """``Microsoft.Storage.BlobCreated`` (Event Grid or CloudEvents schema)."""
    container = Settings.from_env().azure_container
    run_event(event, "model_upload", lambda env: upload_command(env, container=container))
