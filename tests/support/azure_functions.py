"""Call the Azure functions the way the Functions host does.

Trigger payloads go through the azure-functions library's own input converters
(``EventGridEventInConverter``, ``TimerRequestConverter``), so a test receives
exactly the ``func.EventGridEvent`` / ``func.CloudEvent`` / ``func.TimerRequest``
objects the Python worker would build from the same JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.timer import TimerRequestConverter


EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> Any:
    """Return a JSON fixture from ``tests/events``."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def host_event(payload: Any) -> Any:
    """Return the trigger object for one Event Grid delivery (an element of the published array)."""
    if isinstance(payload, list):
        (payload,) = payload
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(payload), "json"), trigger_metadata={})


def host_timer(past_due: bool = False) -> Any:
    """Return the ``TimerRequest`` the host passes to a timer function."""
    info = {"Schedule": {"AdjustForDST": True}, "IsPastDue": past_due,
            "ScheduleStatus": {"Last": "2026-11-20T10:00:00+00:00", "Next": "2026-11-20T11:00:00+00:00",
                               "LastUpdated": "2026-11-20T10:00:00+00:00"}}
    return TimerRequestConverter.decode(meta.Datum(json.dumps(info), "json"), trigger_metadata={})


def http_request(method: str, route: str, route_params: dict[str, str], *, body: Any = None,
                 headers: dict[str, str] | None = None) -> func.HttpRequest:
    """Return an ``HttpRequest`` as the HTTP trigger delivers it."""
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return func.HttpRequest(method=method, url=f"https://modelpilot.azurewebsites.net/api/{route}",
                            headers={"Content-Type": "application/json", **(headers or {})},
                            route_params=route_params, body=raw)


def user_function(name: str) -> Any:
    """Return the Python function registered as ``name`` in ``function_app.app``."""
    import function_app

    for fn in function_app.app.get_functions():
        if fn.get_function_name() == name:
            return fn.get_user_function()
    raise LookupError(f"function_app registers no function named {name}")


def principal_header(name: str, *, provider: str = "aad") -> str:
    """Return an ``X-MS-CLIENT-PRINCIPAL`` value (base64 JSON) as App Service authentication sets it."""
    import base64

    principal = {"auth_typ": provider, "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                 "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                 "claims": [{"typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", "val": name},
                            {"typ": "preferred_username", "val": name},
                            {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier",
                             "val": "3f1d2c4b-0000-4000-8000-000000000001"}]}
    return base64.b64encode(json.dumps(principal).encode()).decode()
