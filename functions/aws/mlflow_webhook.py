"""MLflow registry webhooks (``POST /mlflow/webhook`` on the operator API, HMAC-signed, no IAM) → MLflow commands."""

from __future__ import annotations

from typing import Any

from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.mlflow import webhook
from modelpilot.entrypoints.aws.runtime import api_entry


@api_entry("mlflow_webhook")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Verify MLflow's signature over the raw body, then register, request a promotion or record an approval.

    401 for a request MLflow did not sign (or signed over 300 s ago) and a replayed delivery changes nothing; 503
    for a transient failure, which MLflow retries.
    """
    return webhook(event)


init_phase("ImportMlflowVersion", "RequestMlflowPromotion", "SetMlflowVersionTag")
