"""The Azure Monitor source on the metrics-source contract's traffic.

The traffic is the one ``tests/contract/test_metrics_source_contract.py`` loads into
SQLite, Prometheus and CloudWatch (one sample a minute at :30 for the hour before
END, 100 requests a minute, 5 failing from minute 30 on). Azure Monitor has no
emulator, so a transport answers like the metrics REST API does: one data point per
``interval`` bucket of the requested ``timespan``, with the ``total`` of the
samples in that bucket and no value where there were none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource
from modelpilot.policy_slo import SloSpec
from tests.support.azure_transport import StaticCredential, canned_transport

END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
T = END - timedelta(hours=1)
MINUTES = 60
APPI = "/subscriptions/0000/resourceGroups/rg/providers/microsoft.insights/components/appi"
GRAINS = {"PT1M": 60, "PT5M": 300, "PT15M": 900, "PT30M": 1800, "PT1H": 3600, "PT6H": 21600, "PT12H": 43200,
          "P1D": 86400}


def samples(metric):
    for i in range(MINUTES):
        errors = 5 if i >= 30 else 0
        yield T + timedelta(minutes=i, seconds=30), 100.0 if metric == "requests/count" else float(errors)


def metrics_api(request):
    query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
    start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in query["timespan"].split("/"))
    grain = timedelta(seconds=GRAINS[query["interval"]])
    value = []
    for name in query["metricnames"].split(","):
        data, bucket = [], start
        while bucket < end:
            inside = [v for at, v in samples(name) if bucket <= at < min(bucket + grain, end)]
            point = {"timeStamp": bucket.strftime("%Y-%m-%dT%H:%M:%SZ")}
            if inside:
                point["total"] = sum(inside)
            data.append(point)
            bucket += grain
        value.append({"name": {"value": name, "localizedValue": name}, "unit": "Count", "errorCode": "Success",
                      "timeseries": [{"metadatavalues": [], "data": data}]})
    return 200, {"cost": 0, "timespan": query["timespan"], "interval": query["interval"], "value": value,
                 "namespace": "microsoft.insights/components", "resourceregion": "westeurope"}, {}


@pytest.fixture
def loaded():
    transport, _ = canned_transport(metrics_api)
    spec = SloSpec.model_validate({"name": "a", "environment": "prod", "objective": 0.99, "sli": {
        "kind": "ratio", "source": "azure_monitor",
        "bad": {"query": APPI, "metric_name": "requests/failed", "dimensions": {"cloud/roleName": "$model"}},
        "total": {"query": APPI, "metric_name": "requests/count", "dimensions": {"cloud/roleName": "$model"}}}})
    return AzureMonitorMetricsSource(StaticCredential(), transport=transport), spec.query("churn", version=1)


@pytest.mark.parametrize(("start", "end", "total", "bad"), [
    (T, END, 6000.0, 150.0),
    (END - timedelta(minutes=30), END, 3000.0, 150.0),
    (END - timedelta(minutes=5), END, 500.0, 25.0),
    (T, T + timedelta(minutes=30), 3000.0, 0.0),
])
def test_counts_of_known_traffic(loaded, start, end, total, bad):
    source, query = loaded
    counts = source.counts(query, start, end)
    assert counts.points > 0
    assert (counts.total, counts.total - counts.good) == (total, bad)


def test_window_before_any_traffic_is_missing_data(loaded):
    source, query = loaded
    counts = source.counts(query, T - timedelta(hours=3), T - timedelta(hours=2))
    assert counts.points == 0 and counts.total == 0


def test_counts_many_matches_counts(loaded):
    source, query = loaded
    windows = [(query, END - timedelta(minutes=m), END) for m in (5, 30, 60)]
    assert source.counts_many(windows) == [source.counts(q, s, e) for q, s, e in windows]


def test_a_thirty_day_window_asks_for_coarse_buckets(loaded):
    source, query = loaded
    transport, adapter = canned_transport(metrics_api)
    source = AzureMonitorMetricsSource(StaticCredential(), transport=transport)
    counts = source.counts(query, END - timedelta(days=30), END)
    assert (counts.total, counts.total - counts.good) == (6000.0, 150.0)
    assert {parse_qs(urlparse(r.url).query)["interval"][0] for r in adapter.seen} == {"PT30M"}
    assert source.calls == 1  # total and bad of one resource, filter and aggregation: one call
