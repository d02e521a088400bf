"""MLflow registry webhooks (HMAC-signed; the function key travels in the webhook URL's ``code``) → MLflow commands."""

from __future__ import annotations

import azure.functions as func

from modelpilot.entrypoints.azure.runtime import http_entry, json_response
from modelpilot.entrypoints.mlflow import receive_on_platform

bp = func.Blueprint()


@bp.function_name("mlflow_webhook")
@bp.route(route="mlflow/webhook", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@http_entry("mlflow_webhook")
def mlflow_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Verify the signature over the raw body, then register, request a promotion or record an approval.

    401 for a request MLflow did not sign (or signed over 300 s ago); a transient failure raises, the host
    answers 500 and MLflow retries.
    """
    status, reply = receive_on_platform(dict(req.headers.items()), req.get_body())
    return json_response(reply, status)
