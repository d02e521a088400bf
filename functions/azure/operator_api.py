"""The operator HTTP API: promote, approve, roll back, status, history, incident, canaries (keys + Entra ID)."""

from __future__ import annotations

import azure.functions as func

from modelpilot.entrypoints.azure import http as http
from modelpilot.entrypoints.azure.runtime import http_entry, json_response

bp = func.Blueprint()
KEY = func.AuthLevel.FUNCTION


def _reply(reply: http.Reply) -> func.HttpResponse:
    return json_response(*reply)


@bp.function_name("api_promote")
@bp.route(route="models/{model}/environments/{env}/promote", methods=["POST"], auth_level=KEY)
@http_entry("api_promote")
def api_promote(req: func.HttpRequest) -> func.HttpResponse:
    """Promote a version into an environment (gates decide; 409 when blocked)."""
    p, body = req.route_params, req.get_body()
    return _reply(http.run_command(req.headers, lambda a, k: http.promote_command(p["model"], p["env"], body, a, k)))


@bp.function_name("api_approve")
@bp.route(route="models/{model}/versions/{version}/approve", methods=["POST"], auth_level=KEY)
@http_entry("api_approve")
def api_approve(req: func.HttpRequest) -> func.HttpResponse:
    """Approve a version for an environment as the calling principal."""
    p, body = req.route_params, req.get_body()
    return _reply(
        http.run_command(req.headers, lambda a, k: http.approve_command(p["model"], p["version"], body, a, k))
    )


@bp.function_name("api_rollback")
@bp.route(route="models/{model}/environments/{env}/rollback", methods=["POST"], auth_level=KEY)
@http_entry("api_rollback")
def api_rollback(req: func.HttpRequest) -> func.HttpResponse:
    """Roll an environment back to its last healthy version (or ``to_version``)."""
    p, body = req.route_params, req.get_body()
    return _reply(http.run_command(req.headers, lambda a, k: http.rollback_command(p["model"], p["env"], body, a, k)))


@bp.function_name("api_status")
@bp.route(route="status", methods=["GET"], auth_level=KEY)
@http_entry("api_status")
def api_status(req: func.HttpRequest) -> func.HttpResponse:
    """Which version runs in every environment, for every model."""
    return _reply(http.status_reply(req.headers, None))


@bp.function_name("api_model_status")
@bp.route(route="models/{model}/status", methods=["GET"], auth_level=KEY)
@http_entry("api_model_status")
def api_model_status(req: func.HttpRequest) -> func.HttpResponse:
    """Which version of one model runs in every environment."""
    return _reply(http.status_reply(req.headers, req.route_params["model"]))


@bp.function_name("api_history")
@bp.route(route="models/{model}/environments/{env}/history", methods=["GET"], auth_level=KEY)
@http_entry("api_history")
def api_history(req: func.HttpRequest) -> func.HttpResponse:
    """Every move of an environment's alias, oldest first."""
    return _reply(http.history_reply(req.headers, req.route_params["model"], req.route_params["env"]))


@bp.function_name("api_incident")
@bp.route(route="models/{model}/environments/{env}/incident", methods=["GET"], auth_level=KEY)
@http_entry("api_incident")
def api_incident(req: func.HttpRequest) -> func.HttpResponse:
    """The incident timeline: JSON, the HTML page (``format=html``) or the review draft (``format=markdown``)."""
    p = req.route_params
    body, status, mimetype = http.incident_reply(req.headers, p["model"], p["env"], req.params)
    if isinstance(body, str):
        return func.HttpResponse(body, status_code=status, mimetype=mimetype.split(";")[0], charset="utf-8")
    return json_response(body, status)


@bp.function_name("api_canary")
@bp.route(route="models/{model}/canaries/{env}", methods=["GET"], auth_level=KEY)
@http_entry("api_canary")
def api_canary(req: func.HttpRequest) -> func.HttpResponse:
    """The canary of an environment: weights, step, state, revision, the last analysis."""
    return _reply(http.canary_reply(req.headers, req.route_params["model"], req.route_params["env"]))


@bp.function_name("api_canary_action")
@bp.route(route="models/{model}/canaries/{env}/{action}", methods=["POST"], auth_level=KEY)
@http_entry("api_canary_action")
def api_canary_action(req: func.HttpRequest) -> func.HttpResponse:
    """Pause, resume, abort or promote the canary (409 with the current revision when it changed meanwhile)."""
    p = req.route_params
    return _reply(http.canary_action_reply(req.headers, p["model"], p["env"], p["action"], req.get_body()))
