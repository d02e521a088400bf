"""Azure Monitor metrics as an SLO metrics source.

Counts come from azure-monitor-query's :class:`~azure.monitor.query.MetricsQueryClient`
(``query_resource``: the metrics REST API ``GET {resource}/providers/Microsoft.Insights/metrics``),
with the injected credential (role *Monitoring Reader*), the SDK's retry policy and
an injectable transport or client.

An SLI's counters (``params["counters"]``, as :meth:`modelpilot.policy.slo.SloSpec.query`
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
Throttling (429), server errors (5xx) and unreachable endpoints are
:class:`~modelpilot.exceptions.TransientError`; other refusals (4xx) are
:class:`~modelpilot.exceptions.InvalidInput` (401/403: :class:`~modelpilot.exceptions.NotAuthorized`).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.monitor.query import MetricsQueryClient

from modelpilot.adapters.azure._errors import RETRYABLE_STATUS
from modelpilot.exceptions import DataError, InvalidInput, NotAuthorized, TransientError
from modelpilot.ports import EventCounts, MetricsSource, SliQuery

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from azure.core.credentials import TokenCredential
    from azure.core.pipeline.transport import HttpTransport
    from azure.monitor.query import MetricsQueryResult

__all__ = ["ARM", "AzureMonitorMetricsSource"]

#: the public cloud's Resource Manager endpoint (sovereign clouds have their own)
ARM = "https://management.azure.com"
_AGGREGATION = {
    "sum": "Total",
    "total": "Total",
    "samplecount": "Count",
    "count": "Count",
    "average": "Average",
    "avg": "Average",
    "maximum": "Maximum",
    "max": "Maximum",
    "minimum": "Minimum",
    "min": "Minimum",
}
#: the time grains the metrics API accepts: seconds → ISO 8601
_GRAINS = {
    60: "PT1M",
    300: "PT5M",
    900: "PT15M",
    1800: "PT30M",
    3600: "PT1H",
    21600: "PT6H",
    43200: "PT12H",
    86400: "P1D",
}
_GRAIN_SECONDS = {iso: seconds for seconds, iso in _GRAINS.items()}

_Group = tuple[str, str | None, str | None, str]


class _Metric(NamedTuple):
    resource: str
    namespace: str | None
    filter: str | None
    aggregation: str
    name: str


def _grain(seconds: float, points: int = 1440) -> int:
    """The finest grain (seconds) that keeps the window under ``points`` data points."""
    return next((g for g in _GRAINS if seconds / g <= points), 86400)


def _interval(value: Any) -> int:
    """Return the grain in seconds of ``params.interval`` (``PT5M`` or ``300``)."""
    seconds = _GRAIN_SECONDS.get(str(value).upper())
    if seconds is None and str(value).isdigit() and int(value) in _GRAINS:
        seconds = int(value)
    if seconds is None:
        raise InvalidInput(f"Azure Monitor interval {value!r} is not one of {sorted(_GRAIN_SECONDS)}")
    return seconds


def _filter(dimensions: dict[str, str] | None) -> str | None:
    if not dimensions:
        return None
    return " and ".join(f"{k} eq '{str(v).replace(chr(39), chr(39) * 2)}'" for k, v in sorted(dimensions.items()))


def _aggregation(stat: str, role: str) -> str:
    found = _AGGREGATION.get(stat.lower())
    if found is None:
        raise InvalidInput(
            f"Azure Monitor counter {role!r}: stat {stat!r} is not one of "
            f"{sorted(set(_AGGREGATION.values()))} (or Sum, SampleCount, Avg, Max, Min)"
        )
    return found


def _metrics(query: SliQuery) -> dict[str, _Metric]:
    """Return ``role → metric`` (``total``/``good``/``bad`` or ``value``) of an SLI."""
    params = dict(query.params or {})
    counters: dict[str, dict[str, Any]] = dict(params.get("counters") or {})
    if not counters:
        counters = {
            role: {"metric_name": name}
            for role, name in (("total", query.total), ("good", query.good), ("bad", query.bad))
            if name
        }
    found: dict[str, _Metric] = {}
    for role, spec in counters.items():
        resource = str(spec.get("query") or params.get("resource_uri") or "")
        if not resource.startswith("/subscriptions/"):
            raise InvalidInput(
                f"Azure Monitor counter {role!r} needs the resource id (/subscriptions/…) in its "
                "query (or params.resource_uri)",
                sli=query.kind,
            )
        if not spec.get("metric_name"):
            raise InvalidInput(f"Azure Monitor counter {role!r} needs metric_name", sli=query.kind)
        stat = str(spec.get("stat") or params.get("aggregation") or "Sum")
        found[role] = _Metric(
            resource,
            spec.get("namespace") or params.get("namespace"),
            _filter(spec.get("dimensions")) or params.get("filter"),
            _aggregation(stat, role),
            str(spec["metric_name"]),
        )
    if "total" not in found and "value" not in found:
        raise InvalidInput("an azure_monitor SLI needs a total counter (or a value for timeslices)")
    return found


def _checked(pipeline_response: Any, body: Any, headers: Any) -> Any:
    """The SDK's ``cls`` hook: refuse a body that is not a metrics answer, or a metric that failed."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise DataError("Azure Monitor answered without a 'value' list of metrics")
    for item in body["value"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), dict):
            raise DataError("Azure Monitor answered with a metric that has no name")
        if item.get("errorCode", "Success") != "Success":
            raise DataError(
                f"Azure Monitor could not read metric {item['name'].get('value')}: "
                f"{item.get('errorMessage', item['errorCode'])}"
            )
    return body


@contextmanager
def _monitor_errors(resource: str) -> Iterator[None]:
    """Map the SDK's exceptions of one metrics query onto ModelPilot's typed errors."""
    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientError(f"Azure Monitor is unreachable ({type(exc).__name__}); retry later") from exc
    except HttpResponseError as exc:
        status = exc.status_code or 0
        detail = f"{exc.error.code}: {exc.error.message}" if exc.error is not None else str(exc.reason)
        if status in RETRYABLE_STATUS or status >= 500:
            raise TransientError(f"Azure Monitor answered {status} ({detail}); retry later", status=status) from exc
        if isinstance(exc, ClientAuthenticationError) or status == 403:
            raise NotAuthorized(
                f"the identity may not read metrics of {resource} (needs Monitoring Reader): {detail}"
            ) from exc
        raise InvalidInput(
            f"Azure Monitor refused the metrics query of {resource} ({status} {detail}); check "
            "the resource id, metric names, namespace and dimensions of the SLI",
            status=status,
        ) from exc


class AzureMonitorMetricsSource(MetricsSource):
    """Good and total counts of Azure Monitor metrics over a window.

    Parameters
    ----------
    credential:
        A token credential (``DefaultAzureCredential``; role *Monitoring Reader*). Not needed with ``client``.
    endpoint:
        The Resource Manager endpoint (sovereign clouds differ); also the token audience.
    transport:
        An azure-core transport; tests pass one that answers with recorded responses.
    retries:
        Retries of throttled (429) and failed (5xx) requests, with the SDK's backoff.
    client:
        A ready ``MetricsQueryClient``; ``credential``, ``endpoint``, ``transport`` and ``retries`` are then unused.
    """

    def __init__(
        self,
        credential: TokenCredential | None = None,
        *,
        endpoint: str = ARM,
        transport: HttpTransport[Any, Any] | None = None,
        retries: int = 3,
        client: MetricsQueryClient | None = None,
    ) -> None:
        if client is None:
            if credential is None:
                raise InvalidInput("AzureMonitorMetricsSource needs a credential or a MetricsQueryClient")
            kwargs: dict[str, Any] = {"endpoint": endpoint.rstrip("/"), "retry_total": retries}
            if transport is not None:
                kwargs["transport"] = transport
            client = MetricsQueryClient(credential, **kwargs)
        self.client = client
        self.calls = 0

    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        if end <= start:
            raise InvalidInput("an Azure Monitor window must end after it starts")
        metrics = _metrics(query)
        params = query.params or {}
        if query.kind == "timeslice":
            slice_seconds = int(params.get("slice_seconds") or 3600)
            if slice_seconds not in _GRAINS:
                raise InvalidInput(f"Azure Monitor slices must be one of {sorted(_GRAINS)} seconds")
            if "limit" not in params:
                raise InvalidInput("a timeslice SLI needs params.limit")
            value = metrics["value"]
            values = self._fetch(value[:4], [value.name], start, end, slice_seconds)[value.name]
            limit, op = float(params["limit"]), params.get("op", ">=")
            met = sum(1 for v in values if (v >= limit if op == ">=" else v <= limit))
            return EventCounts(good=float(met), total=float(len(values)), points=len(values))
        grain = _interval(params["interval"]) if params.get("interval") else _grain((end - start).total_seconds())
        groups: dict[_Group, list[str]] = {}
        for metric in metrics.values():
            groups.setdefault(metric[:4], []).append(metric.name)
        fetched = {
            (*group, name): points
            for group, names in groups.items()
            for name, points in self._fetch(group, names, start, end, grain).items()
        }
        series = {role: fetched[(*m[:4], m.name)] for role, m in metrics.items()}
        total = float(sum(series["total"]))
        good = float(sum(series["good"])) if "good" in series else total - float(sum(series.get("bad", [])))
        return EventCounts(good=max(good, 0.0), total=total, points=len(series["total"]))

    def _fetch(
        self, group: _Group, names: list[str], start: datetime, end: datetime, grain: int
    ) -> dict[str, list[float]]:
        """Return the non-empty data points of metrics ``names`` of one resource (one ``query_resource``)."""
        resource, namespace, flt, aggregation = group
        unique = list(dict.fromkeys(names))
        with _monitor_errors(resource):
            result = self.client.query_resource(
                resource,
                metric_names=unique,
                timespan=(start, end),
                granularity=timedelta(seconds=grain),
                aggregations=[aggregation],
                filter=flt,
                metric_namespace=namespace,
                cls=_checked,
            )
        self.calls += 1
        return {name: _points(result, name, aggregation) for name in unique}


def _points(result: MetricsQueryResult, name: str, aggregation: str) -> list[float]:
    """Return the aggregated value of every data point of metric ``name`` that has one."""
    key = aggregation.lower()
    for metric in result.metrics:
        if metric.name == name:
            return [
                float(value)
                for series in metric.timeseries
                for point in series.data
                if (value := getattr(point, key)) is not None
            ]
    raise DataError(f"Azure Monitor returned no series for metric {name}")
