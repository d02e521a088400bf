"""Operator HTTP API (API Gateway HTTP API, IAM auth): promote, approve, rollback, status, history."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from modelpilot.entrypoints.aws.api import app
from modelpilot.entrypoints.aws.init_phase import init_phase
from modelpilot.entrypoints.aws.runtime import api_entry, logger


@api_entry("operator_api")
@logger().inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)  # type: ignore[untyped-decorator]
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Route the request; the caller's IAM principal is the actor."""
    return app.resolve(event, context)


init_phase("PromoteModel", "ApproveModel", "RollbackModel", modules=("modelpilot.service.queries",))
