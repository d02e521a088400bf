"""The Azure Monitor metrics source through azure-monitor-query's ``MetricsQueryClient``.

Azure Monitor has no emulator: the SDK's own pipeline (bearer token, retry policy,
request building, response parsing, error mapping) talks to a transport that
answers with response bodies shaped like the metrics REST API's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import pytest
import requests
from azure.monitor.query import MetricsQueryClient

from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource
from modelpilot.exceptions import DataError, InvalidInput, NotAuthorized, TransientError
from modelpilot.ports import SliQuery
from tests.support.azure_transport import StaticCredential, canned_transport, query_of

APPI = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/modelpilot/providers/"
    "microsoft.insights/components/appi-modelpilot"
)
START, END = datetime(2026, 11, 20, 10, 0, tzinfo=UTC), datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
SLI = SliQuery(
    source="azure_monitor",
    kind="availability",
    total="requests/count",
    bad="requests/failed",
    params={"resource_uri": APPI, "filter": "cloud/roleName eq 'churn-prod'"},
)


def metric(name, totals, unit="Count"):
    """One metric of a metrics REST response, as Azure Monitor returns it (``total`` may be absent)."""
    return {
        "id": f"{APPI}/providers/Microsoft.Insights/metrics/{name}",
        "type": "Microsoft.Insights/metrics",
        "name": {"value": name, "localizedValue": name},
        "displayDescription": "",
        "unit": unit,
        "errorCode": "Success",
        "timeseries": [
            {
                "metadatavalues": [],
                "data": [
                    {
                        "timeStamp": (START + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        **({"total": t} if t is not None else {}),
                    }
                    for i, t in enumerate(totals)
                ],
            }
        ],
    }


def metrics_response(*metrics):
    return {
        "cost": 59,
        "timespan": "2026-11-20T10:00:00Z/2026-11-20T10:05:00Z",
        "interval": "PT1M",
        "value": list(metrics),
        "namespace": "microsoft.insights/components",
        "resourceregion": "westeurope",
    }


def error(code, message):
    return {"error": {"code": code, "message": message}}


def monitor_source(handler, **kw):
    transport, adapter = canned_transport(handler)
    return AzureMonitorMetricsSource(StaticCredential(), transport=transport, **kw), adapter


HEALTHY = metrics_response(
    metric("requests/count", [100, 120, None, 80, 100]), metric("requests/failed", [1, 0, None, 3, 1])
)


def test_counts_good_and_total_from_one_query_resource_call():
    credential = StaticCredential()
    transport, adapter = canned_transport(lambda r: (200, HEALTHY, {}))
    source = AzureMonitorMetricsSource(credential, transport=transport)
    counts = source.counts(SLI, START, END)
    assert (counts.total, counts.good, counts.points) == (400.0, 395.0, 4)
    (request,) = adapter.seen
    query = query_of(request)
    assert urlparse(request.url).netloc == "management.azure.com"
    assert urlparse(request.url).path == f"{APPI}/providers/Microsoft.Insights/metrics"
    assert query["metricnames"] == "requests/count,requests/failed"
    assert (query["aggregation"], query["interval"]) == ("Total", "PT1M")
    assert query["timespan"] == "2026-11-20T10:00:00.000Z/2026-11-20T10:05:00.000Z"
    assert query["$filter"] == "cloud/roleName eq 'churn-prod'"
    assert "metricnamespace" not in query
    assert request.headers["Authorization"] == "Bearer test-token"
    assert ("https://management.azure.com/.default",) in credential.scopes
    assert source.calls == 1


def test_a_good_metric_and_no_data():
    sli = SliQuery(
        source="azure_monitor",
        kind="latency",
        total="requests/count",
        good="requests/fast",
        params={"resource_uri": APPI},
    )
    body = metrics_response(metric("requests/count", [None, None]), metric("requests/fast", [None, None]))
    source, adapter = monitor_source(lambda r: (200, body, {}))
    counts = source.counts(sli, START, END)
    assert (counts.good, counts.total, counts.points) == (0.0, 0.0, 0)
    assert "$filter" not in query_of(adapter.seen[0])


def test_counters_of_different_resources_are_separate_calls():
    other = APPI.replace("appi-modelpilot", "appi-gateway")
    sli = SliQuery(
        source="azure_monitor",
        kind="availability",
        total="",
        params={
            "counters": {
                "total": {"query": APPI, "metric_name": "requests/count"},
                "bad": {"query": other, "metric_name": "requests/failed", "stat": "Sum"},
            }
        },
    )

    def handler(request):
        name = query_of(request)["metricnames"]
        return 200, metrics_response(metric(name, [10, 20] if name == "requests/count" else [1, 2])), {}

    source, adapter = monitor_source(handler)
    counts = source.counts(sli, START, END)
    assert (counts.total, counts.good) == (30.0, 27.0)
    assert sorted(urlparse(r.url).path.split("/providers/Microsoft.Insights")[0] for r in adapter.seen) == sorted(
        [APPI, other]
    )


def test_timeslices_count_the_slices_meeting_the_limit():
    sli = SliQuery(
        source="azure_monitor",
        kind="timeslice",
        total="",
        params={
            "counters": {
                "value": {
                    "query": APPI,
                    "metric_name": "customMetrics/accuracy",
                    "stat": "Average",
                    "namespace": "azure.applicationinsights",
                }
            },
            "op": ">=",
            "limit": 0.8,
            "slice_seconds": 3600,
        },
    )
    item = metric("customMetrics/accuracy", [])
    item["timeseries"][0]["data"] = [
        {"timeStamp": f"2026-11-20T{h:02d}:00:00Z", "average": a} for h, a in enumerate([0.91, 0.79, None, 0.85])
    ]
    source, adapter = monitor_source(lambda r: (200, metrics_response(item), {}))
    counts = source.counts(sli, START, START + timedelta(hours=4))
    assert (counts.good, counts.total, counts.points) == (2.0, 3.0, 3)
    query = query_of(adapter.seen[0])
    assert (query["interval"], query["aggregation"], query["metricnamespace"]) == (
        "PT1H",
        "Average",
        "azure.applicationinsights",
    )


def test_an_injected_client_is_used_as_is():
    transport, adapter = canned_transport(lambda r: (200, HEALTHY, {}))
    client = MetricsQueryClient(
        StaticCredential(), endpoint="https://management.usgovcloudapi.net", transport=transport
    )
    counts = AzureMonitorMetricsSource(client=client).counts(SLI, START, END)
    assert counts.total == 400.0
    assert urlparse(adapter.seen[0].url).netloc == "management.usgovcloudapi.net"
    with pytest.raises(InvalidInput, match="credential"):
        AzureMonitorMetricsSource()


def test_throttling_is_retried_by_the_sdk_then_answered():
    answers = [(429, error("TooManyRequests", "throttled"), {"Retry-After": "0"}), (200, HEALTHY, {})]
    source, adapter = monitor_source(lambda r: answers.pop(0))
    assert source.counts(SLI, START, END).total == 400.0
    assert len(adapter.seen) == 2


@pytest.mark.parametrize(
    ("status", "code", "raised"),
    [
        (429, "TooManyRequests", TransientError),
        (503, "ServiceUnavailable", TransientError),
        (500, "InternalServerError", TransientError),
        (400, "BadRequest", InvalidInput),
        (404, "ResourceNotFound", InvalidInput),
        (401, "InvalidAuthenticationToken", NotAuthorized),
        (403, "AuthorizationFailed", NotAuthorized),
    ],
)
def test_http_errors_are_typed(status, code, raised):
    source, adapter = monitor_source(lambda r: (status, error(code, f"{code} says no"), {}), retries=0)
    with pytest.raises(raised) as caught:
        source.counts(SLI, START, END)
    assert type(caught.value) is raised  # not a subclass (DataError is an InvalidInput)
    assert code in str(caught.value)
    assert caught.value.retryable is (raised is TransientError)
    assert len(adapter.seen) == 1 and source.calls == 0


def test_an_unreachable_endpoint_is_transient():
    def refuse(request):
        raise requests.ConnectionError("connection refused")

    with pytest.raises(TransientError, match="unreachable"):
        monitor_source(refuse, retries=0)[0].counts(SLI, START, END)


def test_unreadable_answers_are_data_errors():
    broken = metric("requests/failed", [])
    broken.update(errorCode="BadRequest", errorMessage="metric not supported")
    with pytest.raises(DataError, match="metric not supported"):
        monitor_source(lambda r: (200, metrics_response(metric("requests/count", [1]), broken), {}))[0].counts(
            SLI, START, END
        )
    with pytest.raises(DataError, match="requests/failed"):
        monitor_source(lambda r: (200, metrics_response(metric("requests/count", [1])), {}))[0].counts(SLI, START, END)
    with pytest.raises(DataError, match="'value' list"):
        monitor_source(lambda r: (200, {"error": "no"}, {}))[0].counts(SLI, START, END)


@pytest.mark.parametrize(
    ("sli", "message"),
    [
        (SliQuery("azure_monitor", "a", "x", bad="y"), "resource_uri"),
        (SliQuery("azure_monitor", "a", "", params={"counters": {"total": {"query": APPI}}}), "metric_name"),
        (
            SliQuery("azure_monitor", "a", "", params={"counters": {"bad": {"query": APPI, "metric_name": "m"}}}),
            "total counter",
        ),
        (
            SliQuery(
                "azure_monitor",
                "a",
                "",
                params={"counters": {"total": {"query": APPI, "metric_name": "m", "stat": "p95"}}},
            ),
            "stat 'p95'",
        ),
        (
            SliQuery(
                "azure_monitor",
                "a",
                "",
                params={"counters": {"total": {"query": APPI, "metric_name": "m"}}, "interval": "PT2M"},
            ),
            "interval 'PT2M'",
        ),
        (
            SliQuery(
                "azure_monitor",
                "timeslice",
                "",
                params={"counters": {"value": {"query": APPI, "metric_name": "m"}}, "limit": 1, "slice_seconds": 120},
            ),
            "slices",
        ),
        (
            SliQuery(
                "azure_monitor", "timeslice", "", params={"counters": {"value": {"query": APPI, "metric_name": "m"}}}
            ),
            "limit",
        ),
    ],
)
def test_bad_slis_are_refused_before_any_call(sli, message):
    source, adapter = monitor_source(lambda r: (200, HEALTHY, {}))
    with pytest.raises(InvalidInput, match=message):
        source.counts(sli, START, END)
    assert adapter.seen == []


def test_an_empty_window_is_refused():
    source, adapter = monitor_source(lambda r: (200, HEALTHY, {}))
    with pytest.raises(InvalidInput, match="end after"):
        source.counts(SLI, END, START)
    assert adapter.seen == []
