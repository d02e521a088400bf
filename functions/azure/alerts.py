"""Azure Monitor alerts (common alert schema) from the stack's action group → HandleAlarm (the rollback policy)."""

from __future__ import annotations

import azure.functions as func

from modelpilot.entrypoints.azure.alerts import alert_command
from modelpilot.entrypoints.azure.runtime import json_response, run_translation

bp = func.Blueprint()


@bp.function_name("azure_monitor_alert")
@bp.route(route="alerts/azure-monitor", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def azure_monitor_alert(req: func.HttpRequest) -> func.HttpResponse:
    """An action group's notification: roll back when the policy names the alert rule; 200 unless a retry can help.

    A permanent failure (a body that is not an alert, an unknown model) is answered 200 with
    ``status: failed`` so the action group does not retry it; a transient one raises, the host
    answers 500, and the action group retries.
    """
    body = req.get_body()
    reply = run_translation("azure_monitor_alert", "Azure Monitor alert", lambda: alert_command(body))
    return json_response(reply)
