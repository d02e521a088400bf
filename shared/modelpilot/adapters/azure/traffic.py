"""Canary traffic router on Azure: an Azure ML managed online endpoint's ``properties.traffic``.

One online endpoint serves a ``(model, environment)`` with one deployment per ModelPilot version (named
by a pattern, default ``v{version}``). The split is written through the Azure Resource Manager REST API
the way the azure-ai-ml SDK's ``online_endpoints.begin_create_or_update`` sends it (api-version
``2024-04-01``)::

    GET …/workspaces/{ws}/onlineEndpoints/{endpoint}                 → {location, identity, kind, tags,
                                                                         properties: {authMode, traffic, …}}
    GET …/onlineEndpoints/{endpoint}/deployments/{deployment}        once per version of the split (exists?)
    PUT …/workspaces/{ws}/onlineEndpoints/{endpoint}                 ← the resource read, traffic replaced

The PUT replaces the resource, so what was read is sent back (location, identity, kind, sku, tags and
every property) with the read-only ``provisioningState``, ``scoringUri`` and ``swaggerUri`` left out;
every deployment gets its share and any other deployment named in ``traffic`` gets 0 (Azure requires the
shares to add up to 100). The PUT is a long-running operation: Azure answers 200/201 and applies the
traffic in the background; the router does not wait (the next tick sees the endpoint again). A split
already in place sends no PUT. A version with no deployment raises ``InvalidInput`` naming the endpoint
and the deployment; an endpoint that is not ``Succeeded`` (still updating) raises ``TransientError``.

Errors as in :mod:`modelpilot.adapters.azure.azureml_sync`: 404 of the endpoint → ``InvalidInput`` (a
misconfigured route), 408/409/429/5xx and connection failures → ``TransientError``, 401/403 →
``NotAuthorized``. The function app's identity needs ``Microsoft.MachineLearningServices/workspaces/
onlineEndpoints/read`` and ``…/write`` and ``…/onlineEndpoints/deployments/read`` on the workspace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelpilot.adapters.azure.azureml_sync import ARM_ENDPOINT, ArmClient
from modelpilot.adapters.routes import serving_name
from modelpilot.exceptions import InvalidInput, NotFound, TransientError
from modelpilot.ports import TrafficRouter

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

    from modelpilot.domain.canary import TrafficSplit

__all__ = ["AzureMlEndpointRouter"]

_READ = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read (and …/deployments/read)"
_WRITE = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write"
#: properties Azure sets itself; never sent back
_READ_ONLY = frozenset({"provisioningState", "scoringUri", "swaggerUri"})
#: top-level fields of the resource that a PUT carries (``id``, ``name``, ``type``, ``systemData`` are Azure's)
_RESOURCE = ("location", "identity", "kind", "sku", "tags")


class AzureMlEndpointRouter(TrafficRouter):
    """Routes the splits of ``(model, environment)`` to the deployments of the online endpoint ``endpoint``.

    Parameters
    ----------
    model, environment:
        The canary this endpoint serves; splits of others are ignored.
    credential:
        The process's Azure credential (the function app's managed identity).
    workspace_id:
        The Azure ML workspace's resource id (``MODELPILOT_AZURE_ML_WORKSPACE_ID``).
    endpoint:
        The online endpoint's name.
    deployment:
        The deployment name of a version (``{version}`` is replaced by its number).
    arm, transport:
        Azure Resource Manager's URL (plain http on loopback only) and an azure-core transport.
    """

    def __init__(
        self,
        model: str,
        environment: str,
        credential: TokenCredential,
        workspace_id: str,
        endpoint: str,
        *,
        deployment: str = "v{version}",
        arm: str = ARM_ENDPOINT,
        transport: HttpTransport[Any, Any] | None = None,
    ) -> None:
        self._arm = ArmClient(credential, workspace_id, endpoint=arm, transport=transport)
        self.model, self.environment, self.endpoint, self.deployment = model, environment, endpoint, deployment

    def url(self, deployment: str | None = None) -> str:
        """Return the endpoint's resource URL (or one of its deployments')."""
        path = f"/onlineEndpoints/{quote(self.endpoint, safe='')}"
        if deployment is not None:
            path += f"/deployments/{quote(deployment, safe='')}"
        return self._arm.resource_url(path)

    def _get(self, url: str, what: str) -> dict[str, Any]:
        try:
            found = self._arm.send("GET", url, f"GET {what}", needs=_READ).json()
        except NotFound:
            raise InvalidInput(
                f"{what} does not exist in workspace {self._arm.workspace}; deploy it, or fix the route "
                f"(MODELPILOT_TRAFFIC_ROUTES: endpoint {self.endpoint!r}, deployment {self.deployment!r})",
                endpoint=self.endpoint,
            ) from None
        except ValueError:  # a 2xx that is not JSON: a proxy's page, a truncated answer
            raise TransientError(f"GET {what}: the answer is not JSON; retry later") from None
        if not isinstance(found, dict) or not isinstance(found.get("properties"), dict):
            raise TransientError(f"GET {what}: the answer holds no properties; retry later")
        return found

    def body(self, resource: dict[str, Any], traffic: dict[str, int]) -> dict[str, Any]:
        """Return the PUT body: the resource read with ``traffic`` (read-only properties left out)."""
        properties = {k: v for k, v in resource["properties"].items() if k not in _READ_ONLY}
        properties["traffic"] = traffic
        return {**{k: resource[k] for k in _RESOURCE if k in resource}, "properties": properties}

    def apply(self, split: TrafficSplit) -> None:
        if (split.model, split.environment) != (self.model, self.environment):
            return
        what = f"Azure ML online endpoint {self.endpoint}"
        resource = self._get(self.url(), what)
        current = {str(k): int(v) for k, v in (resource["properties"].get("traffic") or {}).items()}
        wanted = {serving_name(self.deployment, version): weight for version, weight in split.weights().items()}
        traffic = {**dict.fromkeys(current, 0), **wanted}
        if {k: v for k, v in current.items() if v} == {k: v for k, v in traffic.items() if v}:
            return
        for name in sorted(set(wanted) - {k for k, v in current.items() if v}):
            self._get(self.url(name), f"deployment {name} of {what}")
        state = resource["properties"].get("provisioningState")
        if state not in (None, "Succeeded"):
            raise TransientError(f"{what} is {state}, not Succeeded; the split is applied on a later tick")
        self._arm.send("PUT", self.url(), f"PUT {what}", self.body(resource, traffic), needs=_WRITE)
