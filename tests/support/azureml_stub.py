"""A recording Azure Resource Manager stand-in for Azure ML model versions, on 127.0.0.1.

It holds model version resources (and managed online endpoints with their deployments) in the shape ``ModelVersions_Get`` / ``ModelVersions_CreateOrUpdate`` of
api-version 2024-04-01 return (``id``, ``name``, ``type``, ``properties`` with ``tags``, ``modelUri``,
``flavors``, …, ``systemData``), answers GET with the resource and PUT by storing the body's properties and
echoing the resource, answers a missing version 404 and scripted failures with ARM's error body
(``{"error": {"code", "message"}}``), and records every request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from azure.core.credentials import AccessToken

SUB = "00000000-0000-0000-0000-000000000000"
WORKSPACE_ID = f"/subscriptions/{SUB}/resourceGroups/modelpilot/providers/Microsoft.MachineLearningServices/workspaces/mlw-modelpilot"


class StaticToken:
    """A credential that hands out one token (the stand-in checks it arrives as a bearer token)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("stand-in-token", 4_102_444_800)


def resource(name: str, version: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """A model version as ``ModelVersions_Get`` returns it."""
    return {
        "id": f"{WORKSPACE_ID}/models/{name}/versions/{version}",
        "name": version,
        "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
        "properties": {
            "description": "churn classifier",
            "tags": dict(tags or {"team": "retention"}),
            "properties": {"framework": "numpy-logreg"},
            "isArchived": False,
            "isAnonymous": False,
            "modelUri": f"azureml://subscriptions/{SUB}/resourceGroups/modelpilot/workspaces/mlw-modelpilot/"
            f"datastores/workspaceblobstore/paths/{name}/{version}/",
            "modelType": "custom_model",
            "flavors": {"python_function": {"data": {"loader_module": "mlflow.sklearn"}}},
            "jobName": "sweet_job_1",
            "stage": "Development",
            "provisioningState": "Succeeded",
        },
        "systemData": {"createdAt": "2026-11-20T10:02:11Z", "createdBy": "alice@example.com"},
    }


def online_endpoint(name: str, traffic: dict[str, int], state: str = "Succeeded") -> dict[str, Any]:
    """A managed online endpoint as ``OnlineEndpoints_Get`` returns it (api-version 2024-04-01)."""
    return {
        "id": f"{WORKSPACE_ID}/onlineEndpoints/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints",
        "location": "westeurope",
        "kind": "Managed",
        "tags": {"team": "retention"},
        "identity": {"type": "SystemAssigned", "principalId": "p-1", "tenantId": "t-1"},
        "properties": {
            "authMode": "Key",
            "description": "churn scoring",
            "properties": {"azureml.onlineendpointid": f"{WORKSPACE_ID}/onlineendpoints/{name}"},
            "traffic": dict(traffic),
            "mirrorTraffic": {},
            "publicNetworkAccess": "Enabled",
            "scoringUri": f"https://{name}.westeurope.inference.ml.azure.com/score",
            "swaggerUri": f"https://{name}.westeurope.inference.ml.azure.com/swagger.json",
            "provisioningState": state,
        },
        "systemData": {"createdAt": "2026-11-20T10:02:11Z", "createdBy": "alice@example.com"},
    }


def online_deployment(endpoint: str, name: str) -> dict[str, Any]:
    """A managed online deployment as ``OnlineDeployments_Get`` returns it (the fields the router reads)."""
    return {
        "id": f"{WORKSPACE_ID}/onlineEndpoints/{endpoint}/deployments/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments",
        "location": "westeurope",
        "sku": {"name": "Default", "capacity": 1},
        "properties": {
            "endpointComputeType": "Managed",
            "instanceType": "Standard_DS3_v2",
            "provisioningState": "Succeeded",
        },
    }


class StandIn:
    """Model version resources by path; every request recorded; ``fail`` answers the next requests first."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail: list[tuple[int, str]] = []  # (status, ARM error code; "" answers a page that is not JSON)
        self.endpoint = ""

    def add(self, name: str, version: str, tags: dict[str, str] | None = None) -> None:
        self.resources[f"{WORKSPACE_ID}/models/{name}/versions/{version}"] = resource(name, version, tags)

    def add_endpoint(self, name: str, traffic: dict[str, int], deployments: list[str], state: str = "Succeeded") -> str:
        """Hold an online endpoint with ``deployments``; return its resource path."""
        path = f"{WORKSPACE_ID}/onlineEndpoints/{name}"
        self.resources[path] = online_endpoint(name, traffic, state)
        for deployment in deployments:
            self.resources[f"{path}/deployments/{deployment}"] = online_deployment(name, deployment)
        return path

    def tags(self, name: str, version: str) -> dict[str, str]:
        return self.resources[f"{WORKSPACE_ID}/models/{name}/versions/{version}"]["properties"]["tags"]

    def answer(self, method: str, path: str, query: str, headers: Any, body: bytes) -> tuple[int, Any]:
        self.requests.append(
            {
                "method": method,
                "path": path,
                "query": parse_qs(query),
                "auth": headers.get("Authorization"),
                "body": body,
            }
        )
        if self.fail:
            status, code = self.fail.pop(0)
            if code == "":  # a page that is not JSON (a proxy in between)
                return status, "<html>gateway</html>"
            return status, {"error": {"code": code, "message": f"stand-in answered {status}"}}
        if headers.get("Authorization") != "Bearer stand-in-token":
            return 401, {"error": {"code": "AuthenticationFailed", "message": "no bearer token"}}
        found = self.resources.get(path)
        if found is None:
            return 404, {"error": {"code": "UserError", "message": f"Could not find asset with ID: {path}"}}
        if method == "PUT":
            found["properties"] = {**json.loads(body)["properties"], "provisioningState": "Succeeded"}
        return 200, found


@contextmanager
def azureml_stand_in() -> Iterator[StandIn]:
    """Yield a :class:`StandIn` served on 127.0.0.1 (its ``endpoint`` is the base URL)."""
    state = StandIn()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                status, payload = state.answer(self.command, url.path, url.query, self.headers, body)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = _any

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
