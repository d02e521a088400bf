"""MLflow registry webhooks on AWS: the operator HTTP API's route ``POST /mlflow/webhook`` (payload 2.0).

The route has no IAM authorizer (MLflow cannot sign SigV4): MLflow's HMAC signature over the raw body is the
authentication, checked by the shared edge (:func:`modelpilot.entrypoints.mlflow.receive`) with the signing secret
read from Secrets Manager through the ``SecretsProvider`` port (the secret named by
``MODELPILOT_MLFLOW_WEBHOOK_SECRET``; never logged). Replays are refused by ``handle_once`` on the idempotency
table. API Gateway hands the body over as a string, base64-encoded when it is not text; both are turned back into
the exact bytes MLflow signed. A transient failure (MLflow or a store unavailable) is answered 503, which MLflow
retries; every other answer is :func:`~modelpilot.entrypoints.mlflow.receive`'s.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from modelpilot import telemetry
from modelpilot.entrypoints.mlflow import receive_on_platform
from modelpilot.exceptions import ModelPilotError

__all__ = ["raw_body", "webhook"]

log = telemetry.get_logger("modelpilot.mlflow_webhook")


def raw_body(event: dict[str, Any]) -> bytes | None:
    """Return the request body as the bytes MLflow sent (None when the base64 encoding is broken)."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode()
    try:
        return base64.b64decode(str(body), validate=True)
    except (binascii.Error, ValueError):
        return None


def _reply(status: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(data, default=str),
    }


def webhook(event: dict[str, Any]) -> dict[str, Any]:
    """Answer one API Gateway request carrying an MLflow webhook delivery (see the module docstring)."""
    body = raw_body(event)
    if body is None:
        return _reply(400, {"status": "failed", "message": "the body is not valid base64"})
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    try:
        status, reply = receive_on_platform(headers, body)
    except ModelPilotError as exc:
        if not exc.retryable:
            raise
        log.warning("MLflow webhook answered 503 (MLflow retries): %s: %s", type(exc).__name__, exc.message)
        return _reply(503, {"status": "failed", "error": type(exc).__name__, "message": "transient: try again"})
    return _reply(status, reply)
