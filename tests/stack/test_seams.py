"""The seams of the deployed stack the harness cannot run, checked where they are decided.

* the data key's policy lets CloudWatch Logs encrypt the stack's log groups (no emulator checks key policies);
* generated CloudWatch alarms route to the alarm function by name and tags, their window alarms do not;
* Prometheus behind authentication: the credentials come from the secret store, per request, never echoed;
* the init phase builds the bus, the clients and the policy, and never stops a function from starting.
"""

from __future__ import annotations

import http.server
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from modelpilot.exceptions import InvalidInput, NotAuthorized
from modelpilot.testing import InMemorySecrets
from tests.support.aws import template


# -- KMS -----------------------------------------------------------------------------------------
def test_the_data_key_lets_cloudwatch_logs_encrypt_every_encrypted_log_group():
    resources = template()["Resources"]
    statements = resources["DataKey"]["Properties"]["KeyPolicy"]["Statement"]
    logs = [s for s in statements if "logs." in json.dumps(s.get("Principal", {}))]
    assert len(logs) == 1, "CloudWatch Logs refuses to create a log group whose KMS key it may not use"
    [grant] = logs
    assert grant["Principal"]["Service"] == "logs.${AWS::Region}.amazonaws.com"
    assert {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*", "kms:Describe*"} <= set(grant["Action"])
    assert "kms:EncryptionContext:aws:logs:arn" in grant["Condition"]["ArnLike"]
    encrypted = [
        k for k, v in resources.items() if v["Type"] == "AWS::Logs::LogGroup" and "KmsKeyId" in v["Properties"]
    ]
    groups = [k for k, v in resources.items() if v["Type"] == "AWS::Logs::LogGroup"]
    assert encrypted == groups, "every log group is encrypted with the data key"
    functions = [k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"]
    named = {json.dumps(resources[k]["Properties"].get("LogGroupName")) for k in groups}
    for function in functions:  # each function's own log group exists here, so it is encrypted and retained
        assert json.dumps(f"/aws/lambda/${{{function}}}") in named, function


# -- generated alarms ----------------------------------------------------------------------------
def _spec():
    from modelpilot.policy.slo import SloSpec

    return SloSpec.model_validate(
        {
            "name": "availability",
            "environment": "prod",
            "objective": 0.999,
            "sli": {
                "kind": "ratio",
                "source": "cloudwatch",
                "template": "sagemaker_availability",
                "endpoint_name": "e",
            },
        }
    )


def test_generated_composite_alarms_route_by_name_and_tags_and_window_alarms_do_not():
    from modelpilot.entrypoints.aws import alarm
    from modelpilot.slo.cloudwatch import ENVIRONMENT_TAG, MODEL_TAG, cloudwatch_template

    assert (MODEL_TAG, ENVIRONMENT_TAG) == (alarm.MODEL_TAG, alarm.ENVIRONMENT_TAG)
    resources = cloudwatch_template([("churn", _spec())])["Resources"].values()
    composites = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::CompositeAlarm"]
    windows = [r["Properties"] for r in resources if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(composites) == 4 and len(windows) == 8
    for composite in composites:
        assert alarm.target(composite["AlarmName"]) == ("churn", "prod")
        assert alarm.tag_target({t["Key"]: t["Value"] for t in composite["Tags"]}) == ("churn", "prod")
    for window in windows:
        assert alarm.target(window["AlarmName"]) is None and "Tags" not in window


# -- Prometheus credentials ----------------------------------------------------------------------
class _Prometheus(http.server.BaseHTTPRequestHandler):
    """A Prometheus HTTP API behind a reverse proxy that wants ``Bearer s3cret-token`` (one series, two samples)."""

    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.headers.get("Authorization", ""))
        if self.headers.get("Authorization") != "Bearer s3cret-token":
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b"Unauthorized")
            return
        now = datetime.now(UTC).timestamp()
        body = {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [{"metric": {}, "values": [[now - 500, "10"], [now - 10, "30"]]}],
            },
        }
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def prometheus_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Prometheus.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _counts(source):
    from modelpilot.ports import SliQuery

    end = datetime.now(UTC)
    return source.counts(
        SliQuery(source="prometheus", kind="ratio", total="t", good="t"), end - timedelta(minutes=5), end
    )


@pytest.mark.parametrize(
    "secret",
    ["s3cret-token", '{"bearer_token": "s3cret-token"}'],
    ids=["bare token", "json"],
)
def test_prometheus_reads_its_credentials_from_the_secret_store_on_every_request(prometheus_url, secret):
    from modelpilot.adapters.prometheus import prometheus_sources

    secrets = InMemorySecrets({"prom": secret})
    source = prometheus_sources(prometheus_url, secret="prom", secrets=secrets)["prometheus"]
    assert "s3cret" not in repr(source)
    assert _counts(source).total == 20
    secrets.values["prom"] = "rotated"  # a rotated secret is read on the next request (the provider caches it)
    with pytest.raises(NotAuthorized) as refused:
        _counts(source)
    assert "rotated" not in str(refused.value) and "s3cret" not in str(refused.value)
    assert _Prometheus.seen[-1] == "Bearer rotated"


def test_prometheus_credentials_never_sit_in_the_url_and_a_wrong_secret_says_why_without_its_value():
    from modelpilot.adapters.prometheus import PrometheusMetricsSource, authorization_header, prometheus_sources

    with pytest.raises(InvalidInput, match="secret") as refused:
        PrometheusMetricsSource("http://user:hunter2@127.0.0.1:9090")
    assert "hunter2" not in str(refused.value)
    assert authorization_header('{"username": "a", "password": "b"}') == "Basic YTpi"
    with pytest.raises(InvalidInput) as bad:
        authorization_header('{"token": "hunter2"}')
    assert "hunter2" not in str(bad.value) and "bearer_token" in str(bad.value)
    assert prometheus_sources(None, secret="ignored") == {}
    with pytest.raises(InvalidInput, match="no secret store"):
        prometheus_sources("http://127.0.0.1:9090", secret="prom", secrets=None)


def test_the_aws_wiring_adds_prometheus_with_its_secret(monkeypatch):
    from modelpilot.adapters.aws.wiring import build_adapters
    from modelpilot.adapters.prometheus import PrometheusMetricsSource
    from modelpilot.config import Settings

    class Clients:
        def __call__(self, service):
            return object()

    settings = Settings(
        backend="aws", registry_table="t", prometheus_url="http://127.0.0.1:9090", prometheus_secret="mp/prom"
    )
    adapters = build_adapters(settings, clients=Clients())
    source = adapters.metrics_sources["prometheus"]
    assert isinstance(source, PrometheusMetricsSource) and source._authorization is not None
    assert (
        "prometheus"
        not in build_adapters(Settings(backend="aws", registry_table="t"), clients=Clients()).metrics_sources
    )


# -- the init phase ------------------------------------------------------------------------------
def test_the_init_phase_builds_nothing_outside_a_function_runtime(monkeypatch):
    from modelpilot import bootstrap

    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.delenv("FUNCTIONS_WORKER_RUNTIME", raising=False)
    bootstrap.reset()
    assert bootstrap.prepare(["RegisterModel"]) is None and bootstrap._bus is None


def test_the_init_phase_builds_the_bus_and_reads_the_policy_and_a_failure_waits_for_the_first_call(
    monkeypatch, tmp_path
):
    from modelpilot import bootstrap

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "modelpilot-test")
    monkeypatch.setenv("MODELPILOT_BACKEND", "local")
    monkeypatch.setenv("MODELPILOT_HOME", str(tmp_path))
    (tmp_path / "modelpilot.yaml").write_text("version: 1\nenvironments: [dev, prod]\n", encoding="utf-8")
    bootstrap.reset()
    try:
        bus = bootstrap.prepare(["RegisterModel", "HandleAlarm"], modules=("modelpilot.service.queries",))
        assert bus is not None and bootstrap._bus is bus
        loader = bus.services.policy_loader
        assert loader.parses == 1  # read now, not on the first call
        assert loader().environments == ["dev", "prod"] and loader.parses == 1
        bootstrap.reset()
        (tmp_path / "modelpilot.yaml").write_text("environments: not-a-list\n", encoding="utf-8")
        assert bootstrap.prepare(["RegisterModel"]) is None  # logged; the first invocation reports it
    finally:
        bootstrap.reset()


# -- generated Azure Monitor rules ---------------------------------------------------------------
def _azure_spec(**total):
    from modelpilot.policy.slo import SloSpec

    resource = "/subscriptions/0/resourceGroups/ml/providers/Microsoft.MachineLearningServices/workspaces/w"
    return SloSpec.model_validate(
        {
            "name": "availability",
            "environment": "prod",
            "objective": 0.99,
            "sli": {
                "kind": "ratio",
                "source": "azure_monitor",
                "total": {"query": resource, "metric_name": "Requests", **total},
                "bad": {"query": resource, "metric_name": "Errors"},
            },
        }
    )


def test_generated_azure_monitor_rules_name_the_model_and_route_to_the_alert_function():
    from modelpilot.entrypoints.azure.alerts import alert_command
    from modelpilot.slo.azure_monitor import azure_monitor_template

    template = azure_monitor_template([("churn", _azure_spec())])
    rules = template["resources"]
    assert [r["name"] for r in rules] == [
        "modelpilot-churn-prod-availability-page-1h",
        "modelpilot-churn-prod-availability-page-6h",
        "modelpilot-churn-prod-availability-ticket-1d",
    ]
    assert template["metadata"]["skipped"] == [
        "modelpilot-churn-prod-availability-ticket-3d: a log search rule reads at most 2 days"
    ]
    page = rules[0]["properties"]
    query = page["criteria"]["allOf"][0]["query"]
    assert "burn(3600s)" in query and "burn(300s)" in query and "> 14.4" in query and "/ 0.01" in query
    assert page["actions"]["actionGroups"] == ["[parameters('actionGroupId')]"]
    body = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": "x",
                "alertRule": rules[0]["name"],
                "monitorCondition": "Fired",
                "firedDateTime": "t",
            },
            "customProperties": page["actions"]["customProperties"],
        },
    }
    translated = alert_command(json.dumps(body))
    assert translated is not None
    assert (translated.command.model, translated.command.environment, translated.command.state) == (
        "churn",
        "prod",
        "ALARM",
    )


def test_an_azure_monitor_sli_filtered_on_dimensions_gets_no_rule_but_a_reason():
    from modelpilot.slo.azure_monitor import azure_monitor_template

    with pytest.raises(InvalidInput, match="dimensions"):
        azure_monitor_template([("churn", _azure_spec(dimensions={"deployment": "blue"}))])
