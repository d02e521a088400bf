"""The Azure Monitor source on the metrics-source contract's traffic.

:func:`load` is the Azure Monitor backend of ``tests/contract/test_metrics_source_contract.py``:
Azure Monitor has no emulator, so the SDK's ``MetricsQueryClient`` talks to a
transport that answers like the metrics REST API does (one data point per
``interval`` bucket of the requested ``timespan``, the aggregates of the samples in
that bucket, no value where there were none). The tests here are the Azure-specific
ones on that traffic: the requests the SDK makes for it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import pytest

from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource
from modelpilot.policy.slo import SloSpec
from tests.support.azure_transport import Samples, StaticCredential, canned_transport, metrics_api, query_of

APPI = "/subscriptions/0000/resourceGroups/rg/providers/microsoft.insights/components/appi"
SLI = {
    "kind": "ratio",
    "source": "azure_monitor",
    "bad": {"query": APPI, "metric_name": "requests/failed", "dimensions": {"cloud/roleName": "$model"}},
    "total": {"query": APPI, "metric_name": "requests/count", "dimensions": {"cloud/roleName": "$model"}},
}


def load(samples: Samples) -> tuple[AzureMonitorMetricsSource, SloSpec, Any]:
    """Return ``(source, spec, adapter)``: a source whose metrics API serves ``samples``.

    ``samples(name)`` gives the raw samples of ``requests/count`` and ``requests/failed``;
    ``adapter.seen`` holds the requests the SDK sent.
    """
    transport, adapter = canned_transport(metrics_api(samples))
    spec = SloSpec.model_validate({"name": "a", "environment": "prod", "objective": 0.99, "sli": SLI})
    return AzureMonitorMetricsSource(StaticCredential(), transport=transport), spec, adapter


END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T = END - timedelta(hours=1)


def traffic(name: str) -> list[tuple[datetime, float]]:
    """100 requests a minute at :30 for the hour before END, 5 failing from minute 30 on."""
    return [
        (T + timedelta(minutes=i, seconds=30), 100.0 if name == "requests/count" else 5.0 * (i >= 30))
        for i in range(60)
    ]


@pytest.fixture
def loaded():
    source, spec, adapter = load(traffic)
    return source, spec.query("churn", version=1), adapter


def test_one_call_reads_total_and_bad_with_the_sdk(loaded):
    source, query, adapter = loaded
    counts = source.counts(query, END - timedelta(minutes=30), END)
    assert (counts.total, counts.total - counts.good, counts.points) == (3000.0, 150.0, 30)
    (request,) = adapter.seen
    sent = query_of(request)
    assert urlparse(request.url).path == f"{APPI}/providers/Microsoft.Insights/metrics"
    assert sent["metricnames"] == "requests/count,requests/failed"
    assert sent["timespan"] == "2026-11-20T11:30:00.000Z/2026-11-20T12:00:00.000Z"
    assert (sent["interval"], sent["aggregation"]) == ("PT1M", "Total")
    assert sent["$filter"] == "cloud/roleName eq 'churn'"
    assert "api-version" in sent and request.headers["Authorization"] == "Bearer test-token"


def test_a_thirty_day_window_asks_for_coarse_buckets(loaded):
    source, query, adapter = loaded
    counts = source.counts(query, END - timedelta(days=30), END)
    assert (counts.total, counts.total - counts.good) == (6000.0, 150.0)
    assert {query_of(r)["interval"] for r in adapter.seen} == {"PT30M"}
    assert source.calls == 1  # total and bad of one resource, filter and aggregation: one call


def test_a_fixed_interval_in_the_sli_params(loaded):
    source, query, adapter = loaded
    query = replace(query, params={**(query.params or {}), "interval": "PT5M"})
    counts = source.counts(query, END - timedelta(minutes=30), END)
    assert (counts.total, counts.total - counts.good, counts.points) == (3000.0, 150.0, 6)
    assert query_of(adapter.seen[-1])["interval"] == "PT5M"
