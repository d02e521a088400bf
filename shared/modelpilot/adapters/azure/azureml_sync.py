"""Write-back to Azure ML: tags of a registered model version, through the Azure Resource Manager REST API.

Two calls per update, on the workspace's model version resource
(``{workspace id}/models/{name}/versions/{version}``, ``api-version=2024-04-01``)::

    GET  …/versions/{version}          → the resource: {"id", "name", "type", "properties": {…, "tags": {…}}, …}
    PUT  …/versions/{version}          ← {"properties": <the properties read, tags changed>}

The PUT of ``ModelVersions_CreateOrUpdate`` replaces the whole resource, so the properties read (model
URI, type, flavors, description, job, stage, other tags) are sent back unchanged; only the tags
``modelpilot.<environment>`` (the status) and ``modelpilot.<environment>.report`` are set, and the
read-only ``provisioningState`` is left out. When both tags already hold the values, nothing is PUT:
writing the same update twice is harmless. A change made between the GET and the PUT by someone else
is overwritten (the API offers no ETag precondition on model versions); the window is one round trip.

Errors: 404 → :class:`~modelpilot.exceptions.NotFound`; 408, 409 (a concurrent change), 429, 5xx and
connection failures → :class:`~modelpilot.exceptions.TransientError`; 401/403 or a credential that cannot
get a token → :class:`~modelpilot.exceptions.NotAuthorized`; other answers → a permanent error naming the
status and Azure's error code. No retry inside: the caller reports the failure.

The function app's identity needs ``Microsoft.MachineLearningServices/workspaces/models/versions/read``
and ``…/write`` on the workspace (the role *AzureML Data Scientist*, or a custom role with just these).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from modelpilot.exceptions import InvalidInput, ModelPilotError, NotAuthorized, NotFound, TransientError
from modelpilot.ports import LifecycleSync

if TYPE_CHECKING:
    from azure.core import PipelineClient
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport
    from azure.core.rest import HttpResponse

    from modelpilot.ports import LifecycleUpdate

__all__ = ["API_VERSION", "ARM_ENDPOINT", "ArmClient", "AzureMlLifecycleSync", "tags_of"]

API_VERSION = "2024-04-01"
ARM_ENDPOINT = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
TAG_PREFIX = "modelpilot."
#: properties of the resource Azure sets itself; never sent back
_READ_ONLY = frozenset({"provisioningState"})
_WRITE_VERSIONS = "Microsoft.MachineLearningServices/workspaces/models/versions/write"
_RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})
_WORKSPACE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[0-9A-Fa-f-]{36})/resourceGroups/(?P<rg>[-\w._()]{1,90})"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[A-Za-z0-9][A-Za-z0-9_-]{1,32})$",
    re.IGNORECASE,
)
_EXTERNAL_ID = re.compile(r"^azureml:(?P<ws>[^/]+)/(?P<name>.+):(?P<version>[^:]+)$")


def tags_of(update: LifecycleUpdate) -> dict[str, str]:
    """Return the tags ``update`` sets: ``modelpilot.<environment>`` and ``modelpilot.<environment>.report``."""
    return {
        f"{TAG_PREFIX}{update.stage}": update.stage_status,
        f"{TAG_PREFIX}{update.stage}.report": update.description,
    }


class ArmClient:
    """Azure Resource Manager requests on one Azure ML workspace, with the errors mapped as described above.

    ``workspace_id`` is validated (``MODELPILOT_AZURE_ML_WORKSPACE_ID``); ``endpoint`` must be https
    (plain http on loopback only, for the tests' stand-ins). The pipeline is built on first use.
    """

    def __init__(
        self,
        credential: TokenCredential,
        workspace_id: str,
        *,
        endpoint: str = ARM_ENDPOINT,
        transport: HttpTransport[Any, Any] | None = None,
    ) -> None:
        match = _WORKSPACE_ID.match(workspace_id.rstrip("/"))
        if match is None:
            raise InvalidInput(
                f"{workspace_id!r} is not an Azure ML workspace resource id (/subscriptions/<id>/resourceGroups/"
                "<group>/providers/Microsoft.MachineLearningServices/workspaces/<name>); "
                "check MODELPILOT_AZURE_ML_WORKSPACE_ID",
                setting="MODELPILOT_AZURE_ML_WORKSPACE_ID",
            )
        url = urlparse(endpoint)
        self._plain_http = url.scheme == "http"
        if url.scheme not in {"https", "http"} or (self._plain_http and url.hostname not in {"127.0.0.1", "localhost"}):
            raise InvalidInput(f"endpoint {endpoint!r} must be https (plain http on 127.0.0.1 only)", field="endpoint")
        self.workspace_id = workspace_id.rstrip("/")
        self.workspace = match.group("ws")
        self.endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._transport = transport
        self._client: PipelineClient[Any, Any] | None = None

    def _pipeline(self) -> PipelineClient[Any, Any]:
        if self._client is None:
            from azure.core import PipelineClient
            from azure.core.pipeline.policies import BearerTokenCredentialPolicy, HeadersPolicy, UserAgentPolicy

            policies: list[Any] = [
                HeadersPolicy({"Accept": "application/json"}),
                UserAgentPolicy(sdk_moniker="modelpilot"),
                BearerTokenCredentialPolicy(self._credential, ARM_SCOPE),
            ]
            self._client = PipelineClient(self.endpoint, policies=policies, transport=self._transport)
        return self._client

    def resource_url(self, path: str) -> str:
        """Return the URL of ``path`` below the workspace (``/models/…``, ``/onlineEndpoints/…``)."""
        return f"{self.endpoint}{self.workspace_id}{path}?api-version={API_VERSION}"

    def send(
        self, method: str, url: str, what: str, body: dict[str, Any] | None = None, *, needs: str = _WRITE_VERSIONS
    ) -> HttpResponse:
        """Send one request; return a 2xx answer or raise the typed error of ``what`` (``needs``: the permission
        a 401/403 names)."""
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
        from azure.core.rest import HttpRequest

        request = HttpRequest(method, url, json=body)
        options: dict[str, Any] = {"enforce_https": False} if self._plain_http else {}
        try:
            response: HttpResponse = self._pipeline().send_request(
                request, connection_timeout=10, read_timeout=30, **options
            )
        except ClientAuthenticationError as exc:
            raise NotAuthorized(f"{what}: no token for Azure Resource Manager ({exc.message})") from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientError(f"{what}: Azure Resource Manager is unreachable ({type(exc).__name__})") from None
        _check(response, what, needs)
        return response


class AzureMlLifecycleSync(LifecycleSync):
    """Writes ModelPilot's tags on model versions of one Azure ML workspace.

    Parameters
    ----------
    credential:
        The process's one Azure credential (the function app's managed identity).
    workspace_id:
        The workspace's resource id (``/subscriptions/…/workspaces/<name>``); versions of other workspaces
        are refused.
    endpoint:
        Azure Resource Manager (a plain-HTTP endpoint is accepted on loopback addresses only).
    transport:
        An azure-core transport (default: ``RequestsTransport``).
    """

    def __init__(
        self,
        credential: TokenCredential,
        workspace_id: str,
        *,
        endpoint: str = ARM_ENDPOINT,
        transport: HttpTransport[Any, Any] | None = None,
    ) -> None:
        self.arm = ArmClient(credential, workspace_id, endpoint=endpoint, transport=transport)
        self._credential = credential
        self.workspace_id = self.arm.workspace_id
        self.workspace = self.arm.workspace
        self._endpoint = self.arm.endpoint

    def _send(self, method: str, url: str, what: str, body: dict[str, Any] | None = None) -> HttpResponse:
        return self.arm.send(method, url, what, body)

    def url(self, external_id: str) -> str:
        """Return the model version's resource URL of ``azureml:<workspace>/<model>:<version>``."""
        match = _EXTERNAL_ID.match(external_id)
        if match is None:
            raise InvalidInput(f"{external_id!r} is not azureml:<workspace>/<model>:<version>", field="external_id")
        if match.group("ws").lower() != self.workspace.lower():
            raise InvalidInput(
                f"{external_id} belongs to workspace {match.group('ws')!r}; this app writes to {self.workspace!r} "
                "(MODELPILOT_AZURE_ML_WORKSPACE_ID)",
                field="external_id",
            )
        name, version = quote(match.group("name"), safe=""), quote(match.group("version"), safe="")
        return self.arm.resource_url(f"/models/{name}/versions/{version}")

    def write(self, update: LifecycleUpdate) -> None:
        url = self.url(update.external_id)
        what = f"Azure ML model version {update.external_id}"
        try:
            resource = self._send("GET", url, f"GET {what}").json()
        except ValueError:  # a 2xx that is not JSON: a proxy's page, a truncated answer
            raise TransientError(f"GET {what}: the answer is not JSON; retry later") from None
        properties = resource.get("properties") if isinstance(resource, dict) else None
        if not isinstance(properties, dict):
            raise TransientError(f"GET {what}: the answer holds no properties; retry later")
        tags = dict(properties.get("tags") or {})
        wanted = tags_of(update)
        if all(tags.get(k) == v for k, v in wanted.items()):
            return
        body = {k: v for k, v in properties.items() if k not in _READ_ONLY}
        body["tags"] = {**tags, **wanted}
        self._send("PUT", url, f"PUT {what}", {"properties": body})


def _check(response: HttpResponse, what: str, needs: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    code, message = _error(response)
    detail = f"{status} {code}: {message}"[:300]
    if status == 404:
        raise NotFound(f"{what}: Azure ML has no such model version ({detail})", status=status)
    if status in _RETRYABLE:
        raise TransientError(f"{what}: Azure answered {detail}; retry later", status=status)
    if status in {401, 403}:
        raise NotAuthorized(
            f"{what}: the identity may not do this in the workspace ({detail}); it needs {needs}",
            status=status,
        )
    if status == 400:
        raise InvalidInput(f"{what}: Azure refused the request ({detail})", status=status)
    raise ModelPilotError(f"{what}: Azure answered {detail}", status=status)


def _error(response: HttpResponse) -> tuple[str, str]:
    """Return ARM's ``error.code`` and ``error.message`` (or the reason) of a failed answer."""
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or response.reason), str(error.get("message") or "")
    except (ValueError, AttributeError):
        return str(response.reason), ""
