"""The Azure function app as the Bicep wires it, on Azurite: its app settings, its subscriptions' deliveries.

The app settings come from ``infra/azure/main.bicep`` itself (parsed here), so the test and the
template cannot drift apart. What Azurite cannot stand in for is replaced, and only that: the
storage account URL and managed identity become ``AzureWebJobsStorage`` holding Azurite's
connection string (named by ``MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING``; the Bicep's
``AzureWebJobsStorage__accountName``/``__credential`` are the identity form of the same setting);
the Event Grid topic and Key Vault have no emulator, so their settings are dropped (events go to
the log publisher); resource names get a per-test suffix. Triggers are delivered as the Bicep's
subscriptions deliver them: ``model_upload`` gets the BlobCreated event in the schema its
subscription names, ``model_upload_blob`` the blob of the blobs-extension subscription, and
``azure_monitor_alert`` the common alert schema an action group posts for a rule that
``modelpilot slo rules --format azure-monitor`` generates.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import yaml

from modelpilot.config import ENV
from tests.support.azure_functions import (
    host_blob,
    host_event,
    host_timer,
    http_request,
    load_event,
    principal_header,
    user_function,
)

REPO = Path(__file__).resolve().parents[2]
BICEP = (REPO / "infra" / "azure" / "main.bicep").read_text(encoding="utf-8")


def bicep_app_settings() -> dict[str, str]:
    """The function app's app settings in main.bicep: name → the Bicep expression of its value."""
    block = BICEP[BICEP.index("appSettings: [") : BICEP.index("]", BICEP.index("appSettings: ["))]
    return dict(re.findall(r"\{ name: '([^']+)', value: (.+?) \}", block))


def bicep_values() -> dict[str, str]:
    """The Bicep's variables and parameter defaults that are plain strings."""
    found = dict(re.findall(r"^var (\w+) = '([^']*)'$", BICEP, re.M))
    found.update(re.findall(r"^param (\w+) string = '([^']*)'$", BICEP, re.M))
    return found


def subscription(name: str) -> str:
    """The body of the event subscription ``name`` in main.bicep."""
    start = BICEP.index(f"name: '{name}'")
    return BICEP[start : BICEP.index("dependsOn", start)]


def test_the_bicep_sets_every_setting_the_azure_app_reads_and_no_other():
    settings = bicep_app_settings()
    read_by_the_app = {
        ENV.BACKEND,
        ENV.POLICY,
        ENV.PROMETHEUS_URL,
        ENV.PROMETHEUS_SECRET,
        ENV.AZURE_STORAGE_ACCOUNT_URL,
        ENV.AZURE_TABLE_ENDPOINT,
        ENV.AZURE_CONTAINER,
        ENV.AZURE_REGISTRY_TABLE,
        ENV.AZURE_IDEMPOTENCY_TABLE,
        ENV.AZURE_EVENTGRID_ENDPOINT,
        ENV.AZURE_KEYVAULT_URL,
        ENV.AZURE_ML_WORKSPACE_ID,
        ENV.MLFLOW_TRACKING_URI,
        ENV.MLFLOW_WEBHOOK_SECRET,
        ENV.MLFLOW_TOKEN_SECRET,
        ENV.TRAFFIC_ROUTES,
        ENV.SERVING_ROOT,
    }
    assert read_by_the_app <= set(settings)
    known = {v for k, v in vars(ENV).items() if not k.startswith("_")}
    assert {n for n in settings if n.startswith("MODELPILOT_")} <= known
    # the timers' schedules and the blob trigger's path resolve from settings the Bicep sets
    import function_app  # noqa: F401 - registers the functions whose bindings name the settings

    assert {"DRIFT_SCHEDULE", "SLO_SCHEDULE", "CANARY_SCHEDULE", ENV.AZURE_CONTAINER} <= set(settings)
    assert settings["MODELPILOT_BACKEND"] == "'azure'"


def test_every_function_a_subscription_or_action_group_names_is_registered():
    from tests.support.azure_functions import indexed_functions

    named = set(re.findall(r"/functions/(\w+)'", BICEP)) | set(
        re.findall(r"functionName=Host\.Functions\.(\w+)", BICEP)
    )
    named |= set(re.findall(r"functionName: '(\w+)'", BICEP))
    assert {"model_upload", "model_upload_blob", "azure_monitor_alert"} <= named
    assert named <= set(indexed_functions())


@pytest.fixture
def azure_app(request, monkeypatch, tmp_path):
    """The app settings of main.bicep, on Azurite (see the module docstring); yields what the test needs."""
    from azure.data.tables import TableServiceClient

    from modelpilot import bootstrap
    from tests.support import azure as az

    settings = bicep_app_settings()
    values = bicep_values()
    suffix = uuid.uuid4().hex[:8]
    env: dict[str, str] = {}
    for name, expression in settings.items():
        literal = re.fullmatch(r"'([^']*)'", expression)
        if literal:
            env[name] = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], literal.group(1))
        elif expression in values:
            env[name] = values[expression]
    container = f"models{suffix}"
    env.update(
        {
            ENV.AZURE_CONTAINER: container,
            ENV.AZURE_REGISTRY_TABLE: f"registry{suffix}",
            ENV.AZURE_IDEMPOTENCY_TABLE: f"idem{suffix}",
            ENV.POLICY: f"az://{container}/modelpilot.yaml",
            ENV.SERVING_ROOT: f"az://{container}/monitoring",
            ENV.AZURE_STORAGE_CONNECTION_SETTING: "AzureWebJobsStorage",
            "AzureWebJobsStorage": az.azurite(request).connection_string,
            "WEBSITE_AUTH_ENABLED": "True",  # App Service authentication (entraClientId) fronts the API
        }
    )
    for name in (
        ENV.AZURE_STORAGE_ACCOUNT_URL,
        ENV.AZURE_TABLE_ENDPOINT,
        ENV.AZURE_EVENTGRID_ENDPOINT,
        ENV.AZURE_KEYVAULT_URL,
    ):
        env.pop(name, None)
    assert env[ENV.POLICY] == f"az://{container}/modelpilot.yaml" and settings[ENV.POLICY].endswith("/modelpilot.yaml'")
    assert settings[ENV.SERVING_ROOT] == "'az://${modelsContainer}/monitoring'"  # the container, renamed per test
    for name in [n for n in settings if n not in env] + [ENV.AZURE_EVENTGRID_ENDPOINT, ENV.AZURE_KEYVAULT_URL]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    blob = az.blob_service(request)
    blob.create_container(container)
    tables = TableServiceClient.from_connection_string(env["AzureWebJobsStorage"])
    tables.create_table(env[ENV.AZURE_REGISTRY_TABLE])
    tables.create_table(env[ENV.AZURE_IDEMPOTENCY_TABLE])
    bootstrap.reset()
    yield {"container": blob.get_container_client(container), "name": container, "tmp": tmp_path}
    bootstrap.reset()


def _upload(app, model: str, version: str) -> tuple[str, bytes, str]:
    from modelpilot.package.builder import write_package

    root = app["tmp"] / f"{model}-{version}"
    write_package(root, files={"model.bin": uuid.uuid4().bytes}, name=model, framework="x", metrics={"auc": 0.9})
    app["container"].upload_blob(f"{model}/{version}/model.bin", (root / "model.bin").read_bytes())
    manifest = (root / "modelpilot.json").read_bytes()
    done = app["container"].upload_blob(f"{model}/{version}/modelpilot.json", manifest)
    return f"{model}/{version}/modelpilot.json", manifest, str(done.get_blob_properties().etag)


def _blob_created(app, blob: str, etag: str) -> dict:
    """The BlobCreated delivery of the Bicep's model-upload subscription (its eventDeliverySchema)."""
    cloudevents = "eventDeliverySchema: 'CloudEventSchemaV1_0'" in subscription("model-upload")
    name = "eventgrid_blob_created_manifest" + ("_cloudevents" if cloudevents else "") + ".json"
    event = load_event(name)[0]
    event["subject"] = f"/blobServices/default/containers/{app['name']}/blobs/{blob}"
    event["data"]["url"] = f"https://modelpilotsa.blob.core.windows.net/{app['name']}/{blob}"
    event["data"]["eTag"] = etag
    event["id"] = str(uuid.uuid4())
    return event


def _http(name: str, method: str, route: str, params: dict, body=None, *, who: str):
    request = http_request(method, route, params, body=body, headers={"X-MS-CLIENT-PRINCIPAL": principal_header(who)})
    reply = user_function(name)(request)
    return reply.status_code, json.loads(reply.get_body() or b"{}")


def _live(model: str, environment: str):
    status, body = _http("api_model_status", "GET", f"models/{model}/status", {"model": model}, who="alice@example.com")
    assert status == 200, body
    return next(r["version"] for r in body["status"] if r["environment"] == environment)


def test_upload_to_prod_and_an_azure_monitor_alert_rolls_prod_back(azure_app):
    from modelpilot.bootstrap import get_bus
    from modelpilot.policy.slo import SloSpec
    from modelpilot.slo.azure_monitor import azure_monitor_template

    model = "churn"
    resource = "/subscriptions/0000/resourceGroups/ml/providers/Microsoft.MachineLearningServices/workspaces/w/onlineEndpoints/churn"
    slo = {
        "name": "availability",
        "environment": "prod",
        "objective": 0.99,
        "sli": {
            "kind": "ratio",
            "source": "azure_monitor",
            "total": {"query": resource, "metric_name": "RequestsPerMinute", "stat": "Sum"},
            "bad": {"query": resource, "metric_name": "Errors", "stat": "Sum"},
        },
    }
    policy = {
        "version": 1,
        "environments": ["dev", "staging", "prod"],
        "defaults": {"environments": {"prod": {"approvals": 1}}},
        "models": {model: {"slos": [slo], "rollback": {"prod": {"alarms": [f"modelpilot-{model}-prod-*"]}}}},
    }
    azure_app["container"].upload_blob("modelpilot.yaml", yaml.safe_dump(policy).encode())

    versions = []
    for n, version in enumerate(("v1", "v2"), start=1):
        blob, manifest, etag = _upload(azure_app, model, version)
        user_function("model_upload")(host_event(_blob_created(azure_app, blob, etag)))  # the Event Grid subscription
        # the blobs-extension subscription delivers the same upload to the blob trigger: same blob + ETag, a duplicate
        user_function("model_upload_blob")(host_blob(f"{azure_app['name']}/{blob}", manifest, etag=etag))
        versions.append(len(get_bus().services.registry.list_versions(model)))
        assert _live(model, "dev") == n
        route = f"models/{model}/environments"
        status, body = _http(
            "api_promote",
            "POST",
            f"{route}/staging/promote",
            {"model": model, "env": "staging"},
            {"version": n},
            who="alice@example.com",
        )
        assert status == 200, body
        prod = {"model": model, "env": "prod"}
        status, body = _http(
            "api_promote", "POST", f"{route}/prod/promote", prod, {"version": n}, who="alice@example.com"
        )
        assert status == 409 and "approvals" in {
            g["gate"] for g in body["gate_report"]["gates"] if g["status"] == "failed"
        }
        approve = {"model": model, "version": str(n)}
        status, body = _http(
            "api_approve",
            "POST",
            f"models/{model}/versions/{n}/approve",
            approve,
            {"environment": "prod"},
            who="bob@example.com",
        )
        assert status == 200, body
        status, body = _http(
            "api_promote", "POST", f"{route}/prod/promote", prod, {"version": n}, who="alice@example.com"
        )
        assert status == 200, body
    assert versions == [1, 2]  # one version per upload, though two functions received each
    assert _live(model, "prod") == 2

    template = azure_monitor_template([(model, SloSpec.model_validate(slo))])
    rule = template["resources"][0]
    alert = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": f"/subscriptions/0000/providers/Microsoft.AlertsManagement/alerts/{uuid.uuid4()}",
                "alertRule": rule["name"],
                "severity": "Sev1",
                "signalType": "Log",
                "monitorCondition": "Fired",
                "monitoringService": "Log Alerts V2",
                "alertTargetIDs": [
                    "/subscriptions/0000/resourcegroups/ml/providers/microsoft.operationalinsights/workspaces/logs"
                ],
                "firedDateTime": "2026-11-26T10:05:00.000Z",
                "essentialsVersion": "1.0",
                "alertContextVersion": "1.0",
            },
            "alertContext": {"condition": {"windowSize": rule["properties"]["windowSize"]}},
            "customProperties": rule["properties"]["actions"]["customProperties"],
        },
    }
    request = http_request("POST", "alerts/azure-monitor", {}, body=alert)
    reply = user_function("azure_monitor_alert")(request)
    body = json.loads(reply.get_body())
    assert reply.status_code == 200 and body["status"] == "rolled_back", body
    assert _live(model, "prod") == 1
    again = json.loads(
        user_function("azure_monitor_alert")(http_request("POST", "alerts/azure-monitor", {}, body=alert)).get_body()
    )
    assert again.get("duplicate") is True and _live(model, "prod") == 1  # the action group's retry changes nothing
    user_function("drift_batch")(host_timer())  # the timer (schedule DRIFT_SCHEDULE) runs with the same settings


def test_an_alert_for_no_model_is_ignored_and_a_bad_body_is_refused_without_a_retry(azure_app):
    alert = {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": "a1",
                "alertRule": "cpu-high",
                "monitorCondition": "Fired",
                "firedDateTime": "2026-11-26T10:05:00Z",
            },
            "customProperties": {},
        },
    }
    reply = user_function("azure_monitor_alert")(http_request("POST", "alerts/azure-monitor", {}, body=alert))
    assert json.loads(reply.get_body())["status"] == "ignored"
    reply = user_function("azure_monitor_alert")(http_request("POST", "alerts/azure-monitor", {}, body=b"not json"))
    body = json.loads(reply.get_body())
    assert reply.status_code == 200 and body["status"] == "failed" and "not JSON" in body["message"]
