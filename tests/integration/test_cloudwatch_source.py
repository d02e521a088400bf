"""The CloudWatch source over HTTP against moto's server on 127.0.0.1, and the generated alarms under cfn-lint.

moto answers ``GetMetricData`` for the plain statistics (Sum, SampleCount, Average,
Minimum, Maximum) but fails on percentile and trimmed statistics (``p99``,
``TC(…)``), so these tests use ``Sum``; the SageMaker latency template (which reads
``TC(:threshold)``) is covered by the query it builds, not by moto. moto also
ignores the namespace of a query that has dimensions, so every test uses its own
dimension values (moto's backends are shared by every server in the process).
"""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import yaml

from modelpilot.adapters.aws.cloudwatch import MAX_QUERIES, CloudWatchMetricsSource
from modelpilot.exceptions import InvalidInput
from modelpilot.policy.slo import SloSpec
from modelpilot.slo.cloudwatch import cloudwatch_template, composite_alarm_name
from modelpilot.slo.documents import dump_yaml

pytestmark = pytest.mark.integration

REGION = "us-east-1"
END = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)


@pytest.fixture(scope="module")
def endpoint():
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.fail(f"moto[server] is not installed ({exc}): pip install -e '.[dev]'", pytrace=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def client(endpoint):
    return boto3.client(
        "cloudwatch",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _put(client, namespace, name, dims, values):
    """values: list of (minutes before END, value)."""
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
            "Timestamp": END - timedelta(minutes=m),
            "Value": v,
            "Unit": "Count",
        }
        for m, v in values
    ]
    for i in range(0, len(data), 20):
        client.put_metric_data(Namespace=namespace, MetricData=data[i : i + 20])


def _spec(namespace: str, endpoint_name: str) -> SloSpec:
    dims = {"EndpointName": endpoint_name, "VariantName": "AllTraffic"}
    return SloSpec.model_validate(
        {
            "name": "availability",
            "environment": "prod",
            "objective": 0.99,
            "window": "30d",
            "sli": {
                "kind": "ratio",
                "source": "cloudwatch",
                "total": {"namespace": namespace, "metric_name": "Invocations", "dimensions": dims},
                "bad": {"namespace": namespace, "metric_name": "Invocation5XXErrors", "dimensions": dims},
            },
        }
    )


def test_put_metric_data_then_get_metric_data_counts(client):
    ns, endpoint = f"Test/{uuid.uuid4().hex[:8]}", f"churn-prod-{uuid.uuid4().hex[:8]}"
    dims = {"EndpointName": endpoint, "VariantName": "AllTraffic"}
    # 100 invocations a minute for the last 2 hours, 5 errors a minute in the last 30 minutes
    _put(client, ns, "Invocations", dims, [(m, 100.0) for m in range(1, 121)])
    _put(client, ns, "Invocation5XXErrors", dims, [(m, 5.0) for m in range(1, 31)])
    source = CloudWatchMetricsSource(client)
    spec = _spec(ns, endpoint)
    hour = source.counts(spec.query("churn", version=1), END - timedelta(hours=1), END)
    assert (hour.total, hour.total - hour.good) == (6000.0, 150.0)
    assert hour.points >= 1
    # burn rate over the hour: (150/6000)/0.01 = 2.5
    assert (hour.total - hour.good) / hour.total / 0.01 == pytest.approx(2.5)


def test_missing_metrics_are_missing_data(client):
    source = CloudWatchMetricsSource(client)
    counts = source.counts(
        _spec(f"Test/{uuid.uuid4().hex[:8]}", f"nothing-{uuid.uuid4().hex}").query("m", version=1),
        END - timedelta(hours=1),
        END,
    )
    assert counts.points == 0 and counts.total == 0


def test_counts_many_batches_windows_in_few_calls(client):
    ns = f"Test/{uuid.uuid4().hex[:8]}"
    specs = []
    for n in range(3):
        dims = {"EndpointName": f"ep-{n}-{ns}", "VariantName": "AllTraffic"}
        _put(client, ns, "Invocations", dims, [(m, 10.0 * (n + 1)) for m in range(1, 61)])
        _put(client, ns, "Invocation5XXErrors", dims, [(m, float(n)) for m in range(1, 61)])
        specs.append(_spec(ns, f"ep-{n}-{ns}"))
    windows = [timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=1)]
    requests = [(s.query("m", version=1), END - w, END) for s in specs for w in windows]
    source = CloudWatchMetricsSource(client)
    counts = source.counts_many(requests)
    assert source.calls == len(windows)  # one call per window, not per SLO
    for index, (spec_n, window) in enumerate([(n, w) for n in range(3) for w in windows]):
        minutes = window.total_seconds() / 60
        assert counts[index].total == pytest.approx(10.0 * (spec_n + 1) * minutes)
        assert counts[index].total - counts[index].good == pytest.approx(spec_n * minutes)


def test_more_than_500_queries_are_split(client):
    ns = f"Test/{uuid.uuid4().hex[:8]}"
    spec = _spec(ns, f"wide-{ns}")
    _put(client, ns, "Invocations", {"EndpointName": f"wide-{ns}", "VariantName": "AllTraffic"}, [(1, 7.0)])
    requests = [(spec.query("m", version=1), END - timedelta(minutes=10), END)] * 300  # 600 queries
    source = CloudWatchMetricsSource(client)
    counts = source.counts_many(requests)
    assert source.calls == 2 and MAX_QUERIES < 600
    assert {c.total for c in counts} == {7.0}


def test_sagemaker_templates_build_the_documented_metrics():
    avail = SloSpec.model_validate(
        {
            "name": "a",
            "environment": "prod",
            "objective": 0.999,
            "sli": {
                "kind": "ratio",
                "source": "cloudwatch",
                "template": "sagemaker_availability",
                "endpoint_name": "ep",
            },
        }
    )
    counters = avail.query("m", version=1).params["counters"]
    assert counters["total"]["metric_name"] == "Invocations" and counters["bad"]["metric_name"] == "Invocation5XXErrors"
    assert counters["total"]["namespace"] == "AWS/SageMaker"
    assert counters["total"]["dimensions"] == {"EndpointName": "ep", "VariantName": "AllTraffic"}
    latency = SloSpec.model_validate(
        {
            "name": "l",
            "environment": "prod",
            "objective": 0.99,
            "sli": {
                "kind": "threshold",
                "source": "cloudwatch",
                "template": "sagemaker_latency",
                "endpoint_name": "ep",
                "threshold_ms": 250,
            },
        }
    )
    counters = latency.query("m", version=1).params["counters"]
    # ModelLatency is reported in microseconds: 250 ms → TC(:250000)
    assert (counters["total"]["stat"], counters["good"]["stat"]) == ("SampleCount", "TC(:250000)")


def test_metric_specs_are_required(client):
    spec = SloSpec.model_validate(
        {
            "name": "x",
            "environment": "prod",
            "objective": 0.99,
            "sli": {"kind": "ratio", "source": "cloudwatch", "good": {"query": "a"}, "total": {"query": "b"}},
        }
    )
    with pytest.raises(InvalidInput, match="namespace"):
        CloudWatchMetricsSource(client).counts(spec.query("m", version=1), END - timedelta(hours=1), END)


def test_generated_alarms_are_valid_cloudformation(tmp_path):
    spec = _spec("AWS/SageMaker", "churn-prod")
    template = cloudwatch_template([("churn", spec)])
    composite = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::CompositeAlarm"]
    assert len(composite) == 4  # one per workbook rule
    names = {r["Properties"]["AlarmName"] for r in composite}
    assert composite_alarm_name("churn", spec, "page", "1h") in names
    three_day = template["Resources"]["ChurnProdAvailabilityTicket3dLong"]["Properties"]
    assert (three_day["Metrics"][0]["MetricStat"]["Period"], three_day["EvaluationPeriods"]) == (86400, 3)
    path = tmp_path / "alarms.yaml"
    path.write_text(dump_yaml(template), encoding="utf-8")
    done = subprocess.run(["cfn-lint", str(path)], capture_output=True, text=True, env={"PATH": _venv_path()})
    assert done.returncode == 0, done.stdout + done.stderr
    assert yaml.safe_load(path.read_text())["Resources"].keys() == template["Resources"].keys()


def _venv_path() -> str:
    import os
    import sys
    from pathlib import Path

    return f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def test_server_error_is_transient_moto_fails_on_percentiles(client):
    # moto answers HTTP 500 to percentile statistics (p99): a server error is retryable, not bad input
    from modelpilot.exceptions import TransientError

    ns = f"Test/{uuid.uuid4().hex[:8]}"
    spec = SloSpec.model_validate(
        {
            "name": "p",
            "environment": "prod",
            "objective": 0.99,
            "sli": {
                "kind": "ratio",
                "source": "cloudwatch",
                "total": {"namespace": ns, "metric_name": "ModelLatency", "stat": "SampleCount"},
                "good": {"namespace": ns, "metric_name": "ModelLatency", "stat": "p99"},
            },
        }
    )
    _put(client, ns, "ModelLatency", {}, [(1, 5.0)])
    with pytest.raises(TransientError):
        CloudWatchMetricsSource(client).counts(spec.query("m", version=1), END - timedelta(hours=1), END)
