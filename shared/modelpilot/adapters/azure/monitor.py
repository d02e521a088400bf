"""Azure Monitor metrics as an SLO metrics source.

Counts come from the Azure Monitor metrics REST API (the API behind the
azure-monitor-query metrics clients): ``GET {resource}/providers/Microsoft.Insights/metrics``
with ``aggregation=Total``. It is called through azure-core's pipeline (bearer
token from the injected credential, the SDK's retry policy, an injectable
transport): azure-monitor-query 2.x no longer ships a metrics client, so the
adapter does not depend on one. An :class:`~modelpilot.ports.SliQuery` names the
metrics and the resource::

    SliQuery(source="azure_monitor", kind="availability", total="requests/count", bad="requests/failed",
             params={"resource_uri": "/subscriptions/…/providers/Microsoft.Insights/components/appi-x",
                     "filter": "cloud/roleName eq 'churn-prod'", "interval": "PT1M"})
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from azure.core import PipelineClient
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    HeadersPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest

from modelpilot.adapters.azure._errors import azure_errors
from modelpilot.exceptions import DataError, InvalidInput
from modelpilot.ports import EventCounts, MetricsSource, SliQuery

if TYPE_CHECKING:
    from datetime import datetime

    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport

__all__ = ["API_VERSION", "AzureMonitorMetricsSource"]

API_VERSION = "2023-10-01"
ARM = "https://management.azure.com"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AzureMonitorMetricsSource(MetricsSource):
    """Good and total counts of Azure Monitor metrics over a window.

    Parameters
    ----------
    credential:
        A token credential (``DefaultAzureCredential``; role *Monitoring Reader*).
    endpoint:
        The Resource Manager endpoint (sovereign clouds differ).
    transport:
        An azure-core transport; tests pass one that answers with recorded responses.
    retries:
        Retries of throttled (429) and failed (5xx) requests, with the SDK's backoff.
    """

    def __init__(self, credential: TokenCredential, *, endpoint: str = ARM,
                 transport: HttpTransport[Any, Any] | None = None, retries: int = 3) -> None:
        policies = [HeadersPolicy(), UserAgentPolicy(sdk_moniker="modelpilot"), RetryPolicy(retry_total=retries),
                    BearerTokenCredentialPolicy(credential, f"{endpoint}/.default")]
        kwargs: dict[str, Any] = {"policies": policies}
        if transport is not None:
            kwargs["transport"] = transport
        self.endpoint = endpoint.rstrip("/")
        self.client: PipelineClient[Any, Any] = PipelineClient(self.endpoint, **kwargs)

    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        params = dict(query.params or {})
        resource = str(params.get("resource_uri") or "")
        if not resource.startswith("/subscriptions/"):
            raise InvalidInput("an azure_monitor SLI needs params.resource_uri (/subscriptions/…)",
                               sli=query.kind)
        if query.good is None and query.bad is None:
            raise InvalidInput("an azure_monitor SLI needs a good or a bad metric", sli=query.kind)
        names = [query.total] + [n for n in (query.good, query.bad) if n]
        values = self._totals(resource, names, start, end, params)
        total, points = values[query.total]
        good = values[query.good][0] if query.good is not None else total - values[str(query.bad)][0]
        return EventCounts(good=max(good, 0.0), total=total, points=points)

    def _totals(self, resource: str, names: list[str], start: datetime, end: datetime,
                params: dict[str, Any]) -> dict[str, tuple[float, int]]:
        query: dict[str, str] = {"api-version": API_VERSION, "metricnames": ",".join(dict.fromkeys(names)),
                                 "timespan": f"{_iso(start)}/{_iso(end)}", "aggregation": "Total",
                                 "interval": str(params.get("interval", "PT1M"))}
        if params.get("filter"):
            query["$filter"] = str(params["filter"])
        if params.get("namespace"):
            query["metricnamespace"] = str(params["namespace"])
        url = f"{self.endpoint}{resource}/providers/Microsoft.Insights/metrics"
        request = HttpRequest("GET", url, params=query)
        with azure_errors("query Azure Monitor metrics"):
            response = self.client.send_request(request)
            response.raise_for_status()
        return _parse(response.json(), names)


def _parse(body: Any, names: list[str]) -> dict[str, tuple[float, int]]:
    """Sum the ``total`` of every data point per metric; count the points that had a value."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise DataError("Azure Monitor answered without a 'value' list of metrics")
    found: dict[str, tuple[float, int]] = {}
    for metric in body["value"]:
        name = (metric.get("name") or {}).get("value")
        if metric.get("errorCode", "Success") != "Success":
            raise DataError(f"Azure Monitor could not read metric {name}: {metric.get('errorMessage', '')}")
        total, points = 0.0, 0
        for series in metric.get("timeseries") or []:
            for point in series.get("data") or []:
                if point.get("total") is not None:
                    total += float(point["total"])
                    points += 1
        found[str(name)] = (total, points)
    missing = [n for n in names if n not in found]
    if missing:
        raise DataError(f"Azure Monitor returned no series for metric(s) {', '.join(missing)}")
    return found
