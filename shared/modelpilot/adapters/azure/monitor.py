"""Azure Monitor metrics as an SLO metrics source.

Counts come from the Azure Monitor metrics REST API (the API behind the
azure-monitor-query metrics clients): ``GET {resource}/providers/Microsoft.Insights/metrics``.
It is called through azure-core's pipeline (bearer token from the injected
credential, the SDK's retry policy, an injectable transport): azure-monitor-query
2.x no longer ships a metrics client, so the adapter does not depend on one.

An SLI's counters (``params["counters"]``, as :meth:`modelpilot.policy_slo.SloSpec.query`
builds them) name the metric: ``query`` is the resource id, ``metric_name`` the
metric, ``namespace`` the metric namespace, ``dimensions`` become the ``$filter``
and ``stat`` the aggregation (``Sum`` → ``Total``). In the policy file::

    sli:
      kind: ratio
      source: azure_monitor
      total: {query: /subscriptions/…/components/appi-x, metric_name: requests/count,
              dimensions: {cloud/roleName: churn-$environment}}
      bad:   {query: /subscriptions/…/components/appi-x, metric_name: requests/failed,
              dimensions: {cloud/roleName: churn-$environment}}

Counters of one resource, namespace, filter and aggregation are read in one call.
``timeslice`` SLIs read ``value`` per slice and count the slices that meet the limit.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any, NamedTuple

from azure.core import PipelineClient
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, HeadersPolicy, RetryPolicy, UserAgentPolicy
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
_AGGREGATION = {"sum": "Total", "total": "Total", "samplecount": "Count", "count": "Count", "average": "Average",
                "avg": "Average", "maximum": "Maximum", "max": "Maximum", "minimum": "Minimum", "min": "Minimum"}
#: the time grains the metrics API accepts, in seconds
_GRAINS = {60: "PT1M", 300: "PT5M", 900: "PT15M", 1800: "PT30M", 3600: "PT1H", 21600: "PT6H", 43200: "PT12H",
           86400: "P1D"}


class _Metric(NamedTuple):
    resource: str
    namespace: str | None
    filter: str | None
    aggregation: str
    name: str


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _grain(seconds: float, points: int = 1440) -> str:
    """The finest grain that keeps the window under ``points`` data points."""
    return next((g for s, g in _GRAINS.items() if seconds / s <= points), "P1D")


def _filter(dimensions: dict[str, str] | None) -> str | None:
    if not dimensions:
        return None
    return " and ".join(f"{k} eq '{str(v).replace(chr(39), chr(39) * 2)}'" for k, v in sorted(dimensions.items()))


def _metrics(query: SliQuery) -> dict[str, _Metric]:
    """Return ``role → metric`` (``total``/``good``/``bad`` or ``value``) of an SLI."""
    params = dict(query.params or {})
    counters: dict[str, dict[str, Any]] = dict(params.get("counters") or {})
    if not counters:
        counters = {role: {"metric_name": name} for role, name in
                    (("total", query.total), ("good", query.good), ("bad", query.bad)) if name}
    found: dict[str, _Metric] = {}
    for role, spec in counters.items():
        resource = str(spec.get("query") or params.get("resource_uri") or "")
        if not resource.startswith("/subscriptions/"):
            raise InvalidInput(f"Azure Monitor counter {role!r} needs the resource id (/subscriptions/…) in its "
                               "query (or params.resource_uri)", sli=query.kind)
        if not spec.get("metric_name"):
            raise InvalidInput(f"Azure Monitor counter {role!r} needs metric_name", sli=query.kind)
        stat = str(spec.get("stat") or params.get("aggregation") or "Sum")
        found[role] = _Metric(resource, spec.get("namespace") or params.get("namespace"),
                              _filter(spec.get("dimensions")) or params.get("filter"),
                              _AGGREGATION.get(stat.lower(), stat), str(spec["metric_name"]))
    if "total" not in found and "value" not in found:
        raise InvalidInput("an azure_monitor SLI needs a total counter (or a value for timeslices)")
    return found


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
        self.calls = 0

    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        if end <= start:
            raise InvalidInput("an Azure Monitor window must end after it starts")
        metrics = _metrics(query)
        params = query.params or {}
        if query.kind == "timeslice":
            slice_seconds = int(params.get("slice_seconds") or 3600)
            interval = _GRAINS.get(slice_seconds)
            if interval is None:
                raise InvalidInput(f"Azure Monitor slices must be one of {sorted(_GRAINS)} seconds")
            value = metrics["value"]
            values = self._fetch(value[:4], [value.name], start, end, interval)[value.name]
            limit, op = float(params["limit"]), params.get("op", ">=")
            met = sum(1 for v in values if (v >= limit if op == ">=" else v <= limit))
            return EventCounts(good=float(met), total=float(len(values)), points=len(values))
        interval = str(params.get("interval") or _grain((end - start).total_seconds()))
        groups: dict[tuple[str, str | None, str | None, str], list[str]] = {}
        for metric in metrics.values():
            groups.setdefault(metric[:4], []).append(metric.name)
        fetched = {(*group, name): points for group, names in groups.items()
                   for name, points in self._fetch(group, names, start, end, interval).items()}
        series = {role: fetched[(*m[:4], m.name)] for role, m in metrics.items()}
        total = float(sum(series["total"]))
        good = float(sum(series["good"])) if "good" in series else total - float(sum(series.get("bad", [])))
        return EventCounts(good=max(good, 0.0), total=total, points=len(series["total"]))

    def _fetch(self, group: tuple[str, str | None, str | None, str], names: list[str], start: datetime,
               end: datetime, interval: str) -> dict[str, list[float]]:
        """Return the non-empty data points of metrics ``names`` of one resource (one REST call)."""
        resource, namespace, flt, aggregation = group
        unique = list(dict.fromkeys(names))
        query: dict[str, str] = {"api-version": API_VERSION, "metricnames": ",".join(unique),
                                 "timespan": f"{_iso(start)}/{_iso(end)}", "aggregation": aggregation,
                                 "interval": interval}
        if flt:
            query["$filter"] = flt
        if namespace:
            query["metricnamespace"] = namespace
        url = f"{self.endpoint}{resource}/providers/Microsoft.Insights/metrics"
        with azure_errors("query Azure Monitor metrics"):
            response = self.client.send_request(HttpRequest("GET", url, params=query))
            response.raise_for_status()
        self.calls += 1
        body = response.json()
        return {name: _points(body, name, aggregation) for name in unique}


def _points(body: Any, name: str, aggregation: str) -> list[float]:
    """Return the aggregated value of every data point of metric ``name`` that has one."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise DataError("Azure Monitor answered without a 'value' list of metrics")
    key = aggregation.lower()
    for item in body["value"]:
        if (item.get("name") or {}).get("value") != name:
            continue
        if item.get("errorCode", "Success") != "Success":
            raise DataError(f"Azure Monitor could not read metric {name}: {item.get('errorMessage', '')}")
        return [float(p[key]) for s in item.get("timeseries") or [] for p in s.get("data") or []
                if p.get(key) is not None]
    raise DataError(f"Azure Monitor returned no series for metric {name}")
