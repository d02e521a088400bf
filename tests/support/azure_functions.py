"""Call the Azure functions the way the Functions host does.

Trigger payloads go through the azure-functions library's own input converters
(``EventGridEventInConverter``, ``TimerRequestConverter``), so a test receives
exactly the ``func.EventGridEvent`` / ``func.CloudEvent`` / ``func.TimerRequest``
objects the Python worker would build from the same JSON.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import _abc, meta
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


def host_blob(
    name: str, data: bytes, *, etag: str | None, account_url: str = "https://modelpilotsa.blob.core.windows.net"
) -> Any:
    """Return the ``InputStream`` a blob trigger receives for blob ``<container>/<path>``."""
    from azure.functions.blob import BlobConverter

    properties: dict[str, Any] = {
        "ContentLength": len(data),
        "ContentType": "application/json",
        "BlobType": "BlockBlob",
        "LastModified": "2026-11-20T09:15:02+00:00",
    }
    if etag is not None:
        properties["ETag"] = etag
    metadata = {
        "BlobTrigger": meta.Datum(name, "string"),
        "Uri": meta.Datum(f"{account_url}/{name}", "string"),
        "Properties": meta.Datum(json.dumps(properties), "json"),
        "Metadata": meta.Datum("{}", "json"),
    }
    return BlobConverter.decode(meta.Datum(data, "bytes"), trigger_metadata=metadata)


def host_timer(past_due: bool = False) -> Any:
    """Return the ``TimerRequest`` the host passes to a timer function."""
    info = {
        "Schedule": {"AdjustForDST": True},
        "IsPastDue": past_due,
        "ScheduleStatus": {
            "Last": "2026-11-20T10:00:00+00:00",
            "Next": "2026-11-20T11:00:00+00:00",
            "LastUpdated": "2026-11-20T10:00:00+00:00",
        },
    }
    return TimerRequestConverter.decode(meta.Datum(json.dumps(info), "json"), trigger_metadata={})


def http_request(
    method: str, route: str, route_params: dict[str, str], *, body: Any = None, headers: dict[str, str] | None = None
) -> func.HttpRequest:
    """Return an ``HttpRequest`` as the HTTP trigger delivers it."""
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return func.HttpRequest(
        method=method,
        url=f"https://modelpilot.azurewebsites.net/api/{route}",
        headers={"Content-Type": "application/json", **(headers or {})},
        route_params=route_params,
        body=raw,
    )


_INDEXED: dict[str, Any] = {}
_INDEX_LOCK = threading.Lock()


def indexed_functions() -> dict[str, Any]:
    """Index ``function_app.app`` once, as the worker does at start-up: name → ``Function``."""
    with _INDEX_LOCK:
        if not _INDEXED:
            import function_app

            _INDEXED.update({fn.get_function_name(): fn for fn in function_app.app.get_functions()})
    return _INDEXED


class HostTraceContext(_abc.TraceContext):
    """The trace context the Functions host hands the worker for one invocation."""

    def __init__(self, trace_parent: str, trace_state: str = "") -> None:
        self._parent, self._state = trace_parent, trace_state

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def trace_state(self) -> str:
        return self._state

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class HostContext(func.Context):
    """The ``context`` argument the worker passes to a function that declares one.

    The host starts an activity for every invocation: a new trace, or (for an HTTP
    request with a ``traceparent`` header) a child of the caller's span. ``trace_parent``
    names that activity.
    """

    def __init__(self, function_name: str, trace_parent: str | None = None) -> None:
        import os
        import uuid

        self._name = function_name
        self._invocation = str(uuid.uuid4())
        self._trace = HostTraceContext(trace_parent or f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01")

    @property
    def invocation_id(self) -> str:
        return self._invocation

    @property
    def thread_local_storage(self) -> Any:
        return threading.local()

    @property
    def function_name(self) -> str:
        return self._name

    @property
    def function_directory(self) -> str:
        return str(Path(__file__).resolve().parents[2])

    @property
    def trace_context(self) -> HostTraceContext:
        return self._trace

    @property
    def retry_context(self) -> Any:
        return None


def user_function(name: str, *, context: HostContext | None = None) -> Any:
    """Return the Python function registered as ``name`` in ``function_app.app``, called as the worker calls it:
    with the invocation ``context`` when the function declares one (a fresh host context unless given)."""
    import inspect

    functions = indexed_functions()
    if name not in functions:
        raise LookupError(f"function_app registers no function named {name}")
    function = functions[name].get_user_function()
    if inspect.iscoroutinefunction(function):  # a Durable client binding: the SDK's rich client makes it async

        def call_async(*args: Any, **kwargs: Any) -> Any:
            import asyncio

            kwargs.setdefault("client", durable_client_binding())
            return asyncio.run(function(*args, context=context or HostContext(name), **kwargs))

        return call_async
    if "context" not in inspect.signature(function).parameters:
        return function

    def call(*args: Any, **kwargs: Any) -> Any:
        return function(*args, context=context or HostContext(name), **kwargs)

    return call


def durable_client_binding(rpc: str = "http://127.0.0.1:7071/runtime/webhooks/durabletask/") -> str:
    """Return the JSON the host passes for a ``durableClient`` input binding (the SDK builds its client from it)."""
    base = "http://127.0.0.1:7071/runtime/webhooks/durabletask/instances/INSTANCEID"
    return json.dumps(
        {
            "taskHubName": "ModelPilotHub",
            "creationUrls": {"createNewInstancePostUri": base, "createAndWaitOnNewInstancePostUri": base},
            "managementUrls": {"id": "INSTANCEID", "statusQueryGetUri": base},
            "baseUrl": "http://127.0.0.1:7071/runtime/webhooks/durabletask",
            "requiredQueryStringParameters": "",
            "rpcBaseUrl": rpc,
        }
    )


def entra_id(name: str) -> str:
    """The object id :func:`principal_header` gives the user ``name`` (one per name, stable), as an actor."""
    import uuid

    return f"entra:{uuid.uuid5(uuid.NAMESPACE_URL, f'entra-user:{name}')}"


def principal_header(name: str, *, provider: str = "aad", oid: str | None = None) -> str:
    """Return an ``X-MS-CLIENT-PRINCIPAL`` value (base64 JSON) as App Service authentication sets it.

    The object id is ``oid``, else one derived from ``name`` (:func:`entra_id`).
    """
    import base64

    name_typ = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
    principal = {
        "auth_typ": provider,
        "name_typ": name_typ,
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
        "claims": [
            {"typ": name_typ, "val": name},
            {"typ": "preferred_username", "val": name},
            {
                "typ": "http://schemas.microsoft.com/identity/claims/objectidentifier",
                "val": oid or entra_id(name).removeprefix("entra:"),
            },
        ],
    }
    return base64.b64encode(json.dumps(principal).encode()).decode()


POLICY = """\
environments: [dev, staging, prod]
defaults:
  environments:
    dev:
      thresholds: ["auc >= 0.7"]
    prod:
      approvals: 1
      four_eyes: true
  rollback:
    prod:
      alarms: [churn-prod-feature-drift]
"""


class AzureApp:
    """The function app wired to Azurite through app settings, as on a real host."""

    def __init__(self, request: Any, monkeypatch: Any, tmp_path: Path, policy_text: str = POLICY) -> None:
        from azure.data.tables import TableServiceClient

        from modelpilot import bootstrap
        from modelpilot.testing import RecordingNotifier, RecordingPublisher
        from tests.support import azure as az

        self.tmp_path = tmp_path
        self.blob = az.blob_service(request)
        self.container = az.new_container(request, "models")
        tables = TableServiceClient.from_connection_string(az.azurite(request).connection_string)
        self.registry_table, self.idempotency_table = az.unique("reg"), az.unique("idem")
        tables.create_table(self.registry_table)
        tables.create_table(self.idempotency_table)
        policy = tmp_path / "modelpilot.yaml"
        policy.write_text(policy_text, encoding="utf-8")
        settings = {
            "MODELPILOT_BACKEND": "azure",
            "MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING": az.connection_env(request, monkeypatch),
            "MODELPILOT_AZURE_CONTAINER": self.container,
            "MODELPILOT_AZURE_REGISTRY_TABLE": self.registry_table,
            "MODELPILOT_AZURE_IDEMPOTENCY_TABLE": self.idempotency_table,
            "MODELPILOT_POLICY": str(policy),
            "MODELPILOT_SERVING_ROOT": f"az://{self.container}/monitoring",
            "WEBSITE_AUTH_ENABLED": "True",  # App Service authentication (Entra ID) fronts the API
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        for name in (
            "MODELPILOT_AZURE_EVENTGRID_ENDPOINT",
            "MODELPILOT_AZURE_KEYVAULT_URL",
            "MODELPILOT_AZURE_STORAGE_ACCOUNT_URL",
            "MODELPILOT_DATA_ROOT",
        ):
            monkeypatch.delenv(name, raising=False)
        bootstrap.reset()
        self.bus = bootstrap.get_bus()
        self.notifier = self.bus.services.notifier = RecordingNotifier()
        self.publisher = self.bus.services.publisher = RecordingPublisher()
        self.registry = self.bus.services.registry

    def upload_package(self, prefix: str, *, auc: float = 0.85, name: str = "churn", tamper: bool = False) -> str:
        """Write a package under ``az://<container>/<prefix>/`` and return the manifest blob's ETag."""
        from modelpilot.package.builder import write_package

        root = self.tmp_path / prefix.replace("/", "_")
        write_package(
            root,
            files={"model.bin": f"weights-{prefix}-{auc}".encode()},
            name=name,
            framework="numpy-logreg",
            metrics={"auc": auc},
            lineage={"run_id": prefix},
            features=[{"name": "x", "type": "numeric", "minimum": 0}],
        )
        if tamper:  # same length, other bytes: a digest mismatch
            (root / "model.bin").write_bytes((root / "model.bin").read_bytes()[::-1])
        return self.upload_folder(root, prefix)

    def upload_folder(self, root: Path, prefix: str) -> str:
        """Upload a package folder under ``<prefix>/``, the manifest last (as a real upload does);
        return the manifest's ETag."""
        container = self.blob.get_container_client(self.container)
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.name != "modelpilot.json":
                container.upload_blob(f"{prefix}/{path.relative_to(root).as_posix()}", path.read_bytes())
        done = container.upload_blob(f"{prefix}/modelpilot.json", (root / "modelpilot.json").read_bytes())
        return str(done.get_blob_properties().etag)

    def blob_event(self, prefix: str, etag: str, *, cloudevents: bool = False) -> Any:
        """Return the BlobCreated delivery (fixture shape) of ``<prefix>/modelpilot.json`` here."""
        name = "eventgrid_blob_created_manifest" + ("_cloudevents" if cloudevents else "") + ".json"
        event = load_event(name)[0]
        event["subject"] = f"/blobServices/default/containers/{self.container}/blobs/{prefix}/modelpilot.json"
        event["data"]["url"] = f"https://modelpilotsa.blob.core.windows.net/{self.container}/{prefix}/modelpilot.json"
        event["data"]["eTag"] = etag
        return event

    def close(self) -> None:
        from modelpilot import bootstrap

        bootstrap.reset()
