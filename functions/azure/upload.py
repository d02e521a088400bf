"""Model upload: a ``modelpilot.json`` lands in the models container → register and auto-promote.

Two triggers, one business key (blob + ETag): the Event Grid trigger (subscribed by
infra/azure/main.bicep) and a blob trigger fed by Event Grid (``source=EVENT_GRID``,
subscribe it to the blobs extension webhook instead if preferred). Subscribing both
is harmless: whichever runs second finds the key done.
"""

from __future__ import annotations

import azure.functions as func

from modelpilot.config import Settings
from modelpilot.entrypoints.azure.events import blob_trigger_command, upload_command
from modelpilot.entrypoints.azure.runtime import run_event, run_translation

bp = func.Blueprint()


@bp.function_name("model_upload")
@bp.event_grid_trigger(arg_name="event")
def model_upload(event: func.EventGridEvent, context: func.Context) -> None:
    """``Microsoft.Storage.BlobCreated`` (Event Grid or CloudEvents schema)."""
    container = Settings.from_env().azure_container
    run_event(event, "model_upload", lambda env: upload_command(env, container=container), context)


@bp.function_name("model_upload_blob")
@bp.blob_trigger(
    arg_name="blob",
    path="%MODELPILOT_AZURE_CONTAINER%/{name}",
    connection="AzureWebJobsStorage",
    source=func.BlobSource.EVENT_GRID,
)
def model_upload_blob(blob: func.InputStream, context: func.Context) -> None:
    """The same upload through a blob trigger (``func.InputStream``; the manifest is re-read and verified)."""
    container = Settings.from_env().azure_container
    etag = str((getattr(blob, "blob_properties", None) or {}).get("ETag") or "") or None
    run_translation(
        "model_upload_blob",
        f"blob {blob.name}",
        lambda: blob_trigger_command(blob.name or "", etag, container=container),
        context=context,
    )
