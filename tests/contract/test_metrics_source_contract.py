"""One contract for every MetricsSource: the same traffic, loaded into each backend, gives the same counts.

Traffic (model churn, prod, v1): one sample a minute at :30 for the hour before
END, 100 requests a minute, 5 of them failing from minute 30 on. Every source is
asked for the same windows and must agree, including "no data" before the traffic.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from modelpilot.adapters.aws.cloudwatch import CloudWatchMetricsSource
from modelpilot.adapters.local.telemetry_store import SqliteTelemetryStore
from modelpilot.adapters.prometheus import PrometheusMetricsSource
from modelpilot.policy.slo import SloSpec
from modelpilot.testing import InMemoryMetricsSource
from tests.support.prometheus import PrometheusServer, backfill

END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
T = END - timedelta(hours=1)
MINUTES = 60


def _errors(i: int) -> int:
    return 5 if i >= 30 else 0


def _at(i: int) -> datetime:
    return T + timedelta(minutes=i, seconds=30)


def _slo(sli: dict) -> SloSpec:
    return SloSpec.model_validate({"name": "a", "environment": "prod", "objective": 0.99, "sli": sli})


def _fake(tmp_path_factory):
    spec = _slo({"kind": "ratio", "source": "local", "good": {"query": "requests.ok"}, "total": {"query": "requests"}})
    source = InMemoryMetricsSource()
    selector = spec.query("churn", version=1).total
    for i in range(MINUTES):
        source.record(selector, _at(i), good=100 - _errors(i), total=100)
    return source, spec, None


def _sqlite(tmp_path_factory):
    store = SqliteTelemetryStore(tmp_path_factory.mktemp("telemetry") / "t.db")
    lines = []
    for i in range(MINUTES):
        base = {"type": "request", "model": "churn", "environment": "prod", "version": 1, "time": _at(i).isoformat()}
        lines.append(json.dumps({**base, "count": 100 - _errors(i), "status": 200}))
        if _errors(i):
            lines.append(json.dumps({**base, "count": _errors(i), "status": 500}))
    store.ingest(lines)
    return (
        store,
        _slo({"kind": "ratio", "source": "local", "good": {"query": "requests.ok"}, "total": {"query": "requests"}}),
        None,
    )


def _prometheus(tmp_path_factory):
    root = tmp_path_factory.mktemp("prom-contract")
    lines = ["# TYPE req counter"]
    labels = 'model="churn",environment="prod"'
    for code in ("200", "500"):
        value = 0
        lines.append(f'req_total{{{labels},code="{code}"}} 0 {(T - timedelta(seconds=30)).timestamp():.0f}')
        for i in range(MINUTES):
            value += (100 - _errors(i)) if code == "200" else _errors(i)
            lines.append(f'req_total{{{labels},code="{code}"}} {value} {_at(i).timestamp():.0f}')
    backfill("\n".join(lines) + "\n# EOF\n", root / "data")
    server = PrometheusServer(root / "data")
    server.start()
    spec = _slo(
        {
            "kind": "ratio",
            "source": "prometheus",
            "bad": {"query": 'req_total{model="$model",code="500"}'},
            "total": {"query": 'req_total{model="$model"}'},
        }
    )
    return PrometheusMetricsSource(server.url), spec, server.stop


def _cloudwatch(tmp_path_factory):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    endpoint = f"churn-prod-{uuid.uuid4().hex[:8]}"  # moto ignores the namespace when dimensions are given
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    data = []
    for i in range(MINUTES):
        data.append({"MetricName": "Invocations", "Dimensions": dims, "Timestamp": _at(i), "Value": 100.0})
        data.append(
            {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Timestamp": _at(i), "Value": float(_errors(i))}
        )
    for start in range(0, len(data), 20):
        client.put_metric_data(Namespace="AWS/SageMaker", MetricData=data[start : start + 20])
    spec = _slo(
        {"kind": "ratio", "source": "cloudwatch", "template": "sagemaker_availability", "endpoint_name": endpoint}
    )
    return CloudWatchMetricsSource(client), spec, server.stop


def _azure_monitor(tmp_path_factory):
    from tests.integration.azure.test_azure_monitor_contract import load

    def samples(metric):
        return [(_at(i), 100.0 if metric == "requests/count" else float(_errors(i))) for i in range(MINUTES)]

    source, spec, _ = load(samples)  # the SDK's MetricsQueryClient over a metrics-API transport
    return source, spec, None


@pytest.fixture(scope="module", params=["fake", "sqlite", "prometheus", "cloudwatch", "azure_monitor"])
def loaded(request, tmp_path_factory):
    source, spec, stop = {
        "fake": _fake,
        "sqlite": _sqlite,
        "prometheus": _prometheus,
        "cloudwatch": _cloudwatch,
        "azure_monitor": _azure_monitor,
    }[request.param](tmp_path_factory)
    yield source, spec.query("churn", version=1)
    if stop is not None:
        stop()


@pytest.mark.parametrize(
    ("start", "end", "total", "bad"),
    [
        (T, END, 6000.0, 150.0),
        (END - timedelta(minutes=30), END, 3000.0, 150.0),
        (END - timedelta(minutes=5), END, 500.0, 25.0),
        (T, T + timedelta(minutes=30), 3000.0, 0.0),
    ],
)
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
