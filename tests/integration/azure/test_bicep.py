"""infra/azure/main.bicep: checkov passes (skips carry reasons) and the security posture is what we claim."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BICEP = ROOT / "infra" / "azure" / "main.bicep"
MODULE = ROOT / "infra" / "azure" / "azureml-tag-writer.bicep"


@pytest.fixture(scope="module")
def bicep():
    return BICEP.read_text(encoding="utf-8")


def checkov_binary():
    found = shutil.which("checkov")
    if not found:
        pytest.fail("checkov is not on PATH: run 'make tools' (it installs checkov into .tools/bin)", pytrace=False)
    return found


def test_checkov_passes_with_every_skip_explained(bicep, tmp_path):
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    done = subprocess.run(
        [checkov_binary(), "-f", str(BICEP), "--framework", "bicep", "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    report = json.loads(done.stdout)
    summary = report["summary"]
    assert summary["failed"] == 0, [c["check_id"] for c in report["results"]["failed_checks"]]
    assert summary["passed"] >= 10 and summary["parsing_errors"] == 0
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    reasons = dict(re.findall(r"checkov:skip=(CKV2?_AZURE_\d+):(.+)", bicep))
    assert skipped == set(reasons)
    assert all(len(reason.strip()) > 20 for reason in reasons.values())


def test_storage_is_private_encrypted_and_keyless(bicep):
    for setting in (
        "allowBlobPublicAccess: false",
        "allowSharedKeyAccess: false",
        "minimumTlsVersion: 'TLS1_2'",
        "supportsHttpsTrafficOnly: true",
        "requireInfrastructureEncryption: true",
        "defaultToOAuthAuthentication: true",
    ):
        assert setting in bicep
    assert bicep.count("publicAccess: 'None'") == 3


def test_function_app_is_flex_consumption_with_managed_identity_and_app_settings(bicep):
    assert "tier: 'FlexConsumption'" in bicep
    assert "identity: { type: 'SystemAssigned' }" in bicep
    assert "httpsOnly: true" in bicep and "ftpsState: 'Disabled'" in bicep
    assert "runtime: { name: 'python', version: '3.11' }" in bicep
    for setting in (
        "DRIFT_SCHEDULE",
        "SLO_SCHEDULE",
        "CANARY_SCHEDULE",
        "MODELPILOT_BACKEND",
        "MODELPILOT_AZURE_STORAGE_ACCOUNT_URL",
        "MODELPILOT_AZURE_EVENTGRID_ENDPOINT",
        "MODELPILOT_AZURE_KEYVAULT_URL",
    ):
        assert f"name: '{setting}'" in bicep
    assert "ConnectionString'" not in bicep.replace("APPLICATIONINSIGHTS_CONNECTION_STRING", "")
    # no account keys anywhere: listKeys only reads the app's own function keys, which Event Grid (the blobs
    # extension webhook) and the action group (azure_monitor_alert) must put in the URLs they call
    assert re.findall(r"listKeys\('([^']+)'", bicep) == [
        "${app.id}/host/default",
        "${app.id}/functions/azure_monitor_alert",
    ]


def test_key_vault_uses_rbac_with_purge_protection(bicep):
    for setting in ("enableRbacAuthorization: true", "enablePurgeProtection: true", "enableSoftDelete: true"):
        assert setting in bicep


def test_every_subscription_retries_and_dead_letters(bicep):
    subscriptions = re.findall(r"resource \w+ 'Microsoft\.EventGrid/systemTopics/eventSubscriptions@[^']+'", bicep)
    assert len(subscriptions) == 5  # the uploads twice (Event Grid trigger, blob trigger), Azure ML twice, labels
    blocks = re.split(r"\nresource ", bicep)
    for block in blocks:
        if block.split("'")[1:2] and block.split("'")[1].startswith(
            "Microsoft.EventGrid/systemTopics/eventSubscriptions@"
        ):
            name = block.split()[0]
            assert "retryPolicy: deliveryPolicy" in block, f"{name} has no retry policy"
            assert "deadLetterWithResourceIdentity" in block, f"{name} dead-letters nothing"
    assert bicep.count("deadLetterWithResourceIdentity") == len(subscriptions)
    assert "maxDeliveryAttempts: 30" in bicep and "eventTimeToLiveInMinutes: 1440" in bicep
    for function in ("model_upload", "azureml_model_registered", "azureml_monitor_alarm", "quality_feedback"):
        assert f"/functions/{function}'" in bicep


def test_role_assignments_are_data_plane_roles_scoped_to_resources(bicep):
    assigned = re.findall(r"roles\.(\w+)\)\n", bicep)
    assert set(assigned) == {
        "blobDataOwner",
        "queueDataContributor",
        "tableDataContributor",
        "eventGridDataSender",
        "keyVaultSecretsUser",
        "monitoringReader",
        "monitoringMetricsPublisher",
        "blobDataContributor",
    }
    assert "scope: subscription()" not in bicep and "scope: resourceGroup()" not in bicep
    for broad in ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c"):  # Owner, Contributor
        assert broad not in bicep


def test_function_names_in_bicep_exist_in_the_app():
    from tests.support.azure_functions import indexed_functions

    names = set(indexed_functions())
    referenced = set(re.findall(r"/functions/(\w+)'", BICEP.read_text(encoding="utf-8")))
    assert referenced and referenced <= names


def test_the_azure_ml_write_back_gets_a_custom_role_on_the_workspace_only(bicep, tmp_path):
    module = MODULE.read_text(encoding="utf-8")
    # only with a workspace, scoped to the workspace's own group, setting read by the app
    assert "module mlTagWriter 'azureml-tag-writer.bicep' = if (!empty(mlWorkspaceId))" in bicep
    assert "{ name: 'MODELPILOT_AZURE_ML_WORKSPACE_ID', value: mlWorkspaceId }" in bicep
    actions = re.findall(r"'(Microsoft\.MachineLearningServices/workspaces/[^'@]+)'", module)
    assert actions == [
        "Microsoft.MachineLearningServices/workspaces/models/versions/read",
        "Microsoft.MachineLearningServices/workspaces/models/versions/write",
    ]
    assert "assignableScopes: [workspace.id]" in module and "scope: workspace\n" in module
    assert "roleDefinitions', " not in module  # no built-in (broader) role
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    done = subprocess.run(
        [checkov_binary(), "-f", str(MODULE), "--framework", "bicep", "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report.get("summary", {}).get("failed", 0) == 0, report
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["resource_count"] >= 3
    assert "CKV_AZURE_39" in {c["check_id"] for c in report["results"]["passed_checks"]}  # no custom owner role


def _app_settings(bicep: str) -> dict[str, str]:
    block = bicep.split("appSettings: [", 1)[1].split("\n      ]", 1)[0]
    return dict(re.findall(r"\{ name: '([A-Za-z0-9_]+)', value: ([^}]+?) \}", block))


def _param_default(bicep: str, name: str) -> str:
    [default] = re.findall(rf"^param {name} string = '([^']*)'$", bicep, flags=re.MULTILINE)
    return default


def test_mlflow_settings_come_from_parameters_and_the_webhook_secret_from_the_vault(bicep):
    from modelpilot.config import ENV, Settings

    settings = _app_settings(bicep)
    assert settings[ENV.MLFLOW_TRACKING_URI] == "mlflowTrackingUri"
    assert settings[ENV.MLFLOW_WEBHOOK_SECRET] == "mlflowWebhookSecretName"
    assert settings[ENV.MLFLOW_TOKEN_SECRET] == "mlflowTokenSecretName"
    # deployed with the defaults, the app reads the settings the way config.py does: no tracking URI (write-back
    # off) and the webhook secret under the name the code and docs/mlflow.md use, a valid Key Vault secret name
    deployed = {
        ENV.MLFLOW_TRACKING_URI: _param_default(bicep, "mlflowTrackingUri"),
        ENV.MLFLOW_WEBHOOK_SECRET: _param_default(bicep, "mlflowWebhookSecretName"),
        ENV.MLFLOW_TOKEN_SECRET: _param_default(bicep, "mlflowTokenSecretName"),
    }
    read = Settings.from_env(deployed)
    assert read.mlflow_tracking_uri is None and read.mlflow_token_secret is None
    assert read.mlflow_webhook_secret == Settings().mlflow_webhook_secret == "modelpilot-mlflow-webhook"
    assert re.fullmatch(r"[0-9A-Za-z-]{1,127}", read.mlflow_webhook_secret)
    with_server = Settings.from_env({**deployed, ENV.MLFLOW_TRACKING_URI: "https://mlflow.example.com"})
    assert with_server.mlflow_tracking_uri == "https://mlflow.example.com"
    # the secret is referenced by its name in the vault and read with the app's identity (Key Vault Secrets User
    # on this vault only): never resolved into an app setting, where every reader of the configuration sees it
    assert "@Microsoft.KeyVault(" not in bicep
    assert "MODELPILOT_AZURE_KEYVAULT_URL', value: vault.properties.vaultUri" in bicep
    secrets_user = bicep.split("resource appSecrets ", 1)[1].split("\n}\n", 1)[0]
    assert "scope: vault\n" in secrets_user and "principalId: app.identity.principalId" in secrets_user
    assert "roles.keyVaultSecretsUser" in secrets_user


ROUTER_MODULE = ROOT / "infra" / "azure" / "azureml-endpoint-router.bicep"


def test_canary_routing_gets_a_custom_role_on_each_routed_endpoint_only(bicep, tmp_path):
    module = ROUTER_MODULE.read_text(encoding="utf-8")
    # only with a workspace and named endpoints; the timer and the routes are app settings
    assert (
        "module mlTrafficRouter 'azureml-endpoint-router.bicep' = if (!empty(mlWorkspaceId) && !empty(canaryEndpoints))"
        in bicep
    )
    for setting in (
        "{ name: 'CANARY_SCHEDULE', value: canarySchedule }",
        "{ name: 'MODELPILOT_TRAFFIC_ROUTES', value: trafficRoutes }",
    ):
        assert setting in bicep
    actions = re.findall(r"'(Microsoft\.MachineLearningServices/workspaces/[^'@]+)'", module)
    assert actions == [
        "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read",
        "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write",
        "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/read",
    ]
    # the role may be assigned in the workspace, and is assigned on each endpoint, not on the workspace
    assert "assignableScopes: [workspace.id]" in module and "scope: endpoints[i]\n" in module
    assert "scope: workspace\n" not in module and "roleDefinitions', " not in module
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    done = subprocess.run(
        [checkov_binary(), "-f", str(ROUTER_MODULE), "--framework", "bicep", "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report.get("summary", {}).get("failed", 0) == 0, report
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["resource_count"] >= 3
