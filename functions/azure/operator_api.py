"""The operator HTTP API: promote, approve, roll back, status, history (function keys + Entra ID)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.azure._host import json_response

import azure.functions as func
from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints import azure_http as http
from modelpilot.exceptions import ModelPilotError

if TYPE_CHECKING:
    from collections.abc import Callable

bp = func.Blueprint()
_STATUS = {"blocked": 409}
KEY = func.AuthLevel.FUNCTION


def _run(req: func.HttpRequest, build: Callable[[str, str | None], Any]) -> func.HttpResponse:
    """Build the command from the request (actor, idempotency key), handle it, reply with the outcome."""
    try:
        actor = http.actor_from_headers(dict(req.headers), trusted=http.platform_auth_enabled())
        outcome = get_bus().handle(build(actor, req.headers.get("Idempotency-Key")))
    except ModelPilotError as exc:
        if exc.retryable:
            return json_response(exc.to_dict(), 503)
        return json_response(exc.to_dict(), exc.http_status)
    return json_response(outcome.to_dict(), _STATUS.get(outcome.status, 200))


@bp.function_name("api_promote")
@bp.route(route="models/{model}/environments/{env}/promote", methods=["POST"], auth_level=KEY)
def api_promote(req: func.HttpRequest) -> func.HttpResponse:
    """Promote a version into an environment (gates decide; 409 when blocked)."""
    p, body = req.route_params, req.get_body()
    return _run(req, lambda actor, key: http.promote_command(p["model"], p["env"], body, actor, key))


@bp.function_name("api_approve")
@bp.route(route="models/{model}/versions/{version}/approve", methods=["POST"], auth_level=KEY)
def api_approve(req: func.HttpRequest) -> func.HttpResponse:
    """Approve a version for an environment as the calling principal."""
    p, body = req.route_params, req.get_body()
    return _run(req, lambda actor, key: http.approve_command(p["model"], p["version"], body, actor, key))


@bp.function_name("api_rollback")
@bp.route(route="models/{model}/environments/{env}/rollback", methods=["POST"], auth_level=KEY)
def api_rollback(req: func.HttpRequest) -> func.HttpResponse:
    """Roll an environment back to its last healthy version (or ``to_version``)."""
    p, body = req.route_params, req.get_body()
    return _run(req, lambda actor, key: http.rollback_command(p["model"], p["env"], body, actor, key))


def _status(model: str | None) -> func.HttpResponse:
    from modelpilot.service.queries import status

    try:
        bus = get_bus()
        rows = status(bus.services.registry, bus.services.policy, model)
    except ModelPilotError as exc:
        return json_response(exc.to_dict(), exc.http_status)
    return json_response({"status": rows})


@bp.function_name("api_status")
@bp.route(route="status", methods=["GET"], auth_level=KEY)
def api_status(req: func.HttpRequest) -> func.HttpResponse:
    """Which version runs in every environment, for every model."""
    return _status(None)


@bp.function_name("api_model_status")
@bp.route(route="models/{model}/status", methods=["GET"], auth_level=KEY)
def api_model_status(req: func.HttpRequest) -> func.HttpResponse:
    """Which version of one model runs in every environment."""
    return _status(req.route_params["model"])


@bp.function_name("api_history")
@bp.route(route="models/{model}/environments/{env}/history", methods=["GET"], auth_level=KEY)
def api_history(req: func.HttpRequest) -> func.HttpResponse:
    """Every move of an environment's alias, oldest first."""
    from modelpilot.service.queries import alias_history

    p = req.route_params
    try:
        bus = get_bus()
        bus.services.policy.check_environment(p["env"])
        rows = alias_history(bus.services.registry, p["model"], p["env"])
    except ModelPilotError as exc:
        return json_response(exc.to_dict(), exc.http_status)
    return json_response({"model": p["model"], "environment": p["env"], "history": rows})
