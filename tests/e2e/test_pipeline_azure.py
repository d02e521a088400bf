"""The example model repository's GitHub workflow, step by step, against Azurite (the Azure path).

As on AWS: the ``run:`` steps execute in order with a hosted runner's environment; the
OIDC sign-in (azure/login) is played by handing the SDK Azurite's connection string;
the upload function (function_app's ``model_upload``) receives each manifest's
``BlobCreated`` event as the Event Grid subscription delivers it.
"""

from __future__ import annotations

import pytest

from modelpilot import bootstrap
from modelpilot.domain.audit import verify_chain
from tests.support import azure as az
from tests.support.azure_functions import host_event, load_event, user_function
from tests.support.github_runner import JobFailed
from tests.support.pipeline import APPROVER, EXAMPLE, GITHUB, Platform, common_actions, runner, workspace

pytestmark = pytest.mark.integration
CONNECTION = "MODELPILOT_TEST_STORAGE"


@pytest.fixture
def azure_app(request, monkeypatch):
    """A function app on Azurite, wired from app settings; the platform policy in its container."""
    from azure.data.tables import TableServiceClient

    connection = az.azurite(request).connection_string
    container = az.new_container(request, "models")
    tables = TableServiceClient.from_connection_string(connection)
    registry_table, idempotency_table = az.unique("reg"), az.unique("idem")
    tables.create_table(registry_table)
    tables.create_table(idempotency_table)
    # the pipeline reaches Azurite with a storage key where azure/login leaves the app's Entra ID sign-in:
    # the platform delegates that key holder here, as the example policy delegates the app's object id
    policy = (EXAMPLE / "modelpilot.yaml").read_text(encoding="utf-8")
    policy = policy.replace("delegates:\n", 'delegates:\n  - "anonymous:storage-key"\n', 1)
    az.blob_service(request).get_blob_client(container, "modelpilot.yaml").upload_blob(policy.encode())
    settings = {
        "MODELPILOT_BACKEND": "azure",
        "MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING": CONNECTION,
        CONNECTION: connection,
        "MODELPILOT_AZURE_CONTAINER": container,
        "MODELPILOT_AZURE_REGISTRY_TABLE": registry_table,
        "MODELPILOT_AZURE_IDEMPOTENCY_TABLE": idempotency_table,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    for name in (
        "MODELPILOT_POLICY",
        "MODELPILOT_AZURE_EVENTGRID_ENDPOINT",
        "MODELPILOT_AZURE_KEYVAULT_URL",
        "MODELPILOT_AZURE_STORAGE_ACCOUNT_URL",
        "MODELPILOT_DATA_ROOT",
    ):
        monkeypatch.delenv(name, raising=False)
    bootstrap.reset()
    yield {"connection": connection, "container": container, "registry_table": registry_table}
    bootstrap.reset()


def _platform(request, container):
    client = az.blob_service(request).get_container_client(container)

    def discover():
        return [
            (blob.name, str(blob.etag))
            for blob in client.list_blobs(name_starts_with="churn/")
            if blob.name.endswith("/modelpilot.json")
        ]

    def deliver(name, etag):
        event = load_event("eventgrid_blob_created_manifest.json")[0]
        event["subject"] = f"/blobServices/default/containers/{container}/blobs/{name}"
        event["data"]["url"] = f"https://acmemodels.blob.core.windows.net/{container}/{name}"
        event["data"]["eTag"] = etag
        return user_function("model_upload")(host_event(event))

    return Platform(discover, deliver)


def test_example_repository_pipeline_on_azure(azure_app, request, tmp_path):
    repo = workspace(tmp_path)
    signed_in: list[dict] = []

    def azure_sign_in(with_, env):
        assert with_ == {"client-id": "7d5c-client", "tenant-id": "acme-tenant", "subscription-id": "acme-sub"}
        signed_in.append(with_)
        # the SDK reaches Azurite through a connection string where azure/login would leave an Azure CLI sign-in
        return {"MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING": CONNECTION, CONNECTION: azure_app["connection"]}

    def aws_sign_in(with_, env):
        raise AssertionError("the Azure pipeline must not sign in to AWS")

    actions = {**common_actions(), "azure/login": azure_sign_in, "aws-actions/configure-aws-credentials": aws_sign_in}
    variables = {
        "MODELPILOT_CLOUD": "azure",
        "MODELPILOT_AZURE_CLIENT_ID": "7d5c-client",
        "MODELPILOT_AZURE_TENANT_ID": "acme-tenant",
        "MODELPILOT_AZURE_SUBSCRIPTION_ID": "acme-sub",
        "MODELPILOT_AZURE_STORAGE_ACCOUNT_URL": "https://acmemodels.blob.core.windows.net",
        "MODELPILOT_AZURE_CONTAINER": azure_app["container"],
        "MODELPILOT_AZURE_REGISTRY_TABLE": azure_app["registry_table"],
    }
    run = runner(tmp_path, repo, actions, variables)
    with _platform(request, azure_app["container"]) as platform:
        try:
            results = run.run_caller(repo / ".github" / "workflows" / "release.yml")
        except JobFailed as exc:
            pytest.fail(f"{exc}\n\n{run.transcript()}")
    (tmp_path / "transcript.txt").write_text(run.transcript(), encoding="utf-8")

    jobs = results["modelpilot"]
    package = f"az://{azure_app['container']}/churn/{GITHUB['sha'][:12]}-{GITHUB['run_id']}"
    assert jobs["release"]["outputs"] == {"version": "1", "package-uri": package}
    assert jobs["promote"]["result"] == "success" and len(signed_in) == 2
    [reply] = platform.replies
    assert reply is None  # the Functions host's return value; the outcome is in the registry
    registry = bootstrap.get_bus().services.registry
    version = registry.get_version("churn", 1)
    assert version.package_uri == package and version.registered_by == "system:eventgrid"
    assert version.manifest.lineage.run_url.endswith(f"/actions/runs/{GITHUB['run_id']}")
    assert registry.get_alias("churn", "dev").version == registry.get_alias("churn", "staging").version == 1
    assert [a.approver for a in registry.list_approvals("churn", 1, "staging")] == [f"github:{APPROVER}"]
    records = registry.audit_records("churn")
    assert [r.action for r in records] == ["register", "promote", "approve", "promote"]
    assert verify_chain("churn", records).ok
    by_name = {r.name: r for r in run.records}
    waited = by_name["Wait for registration and the first environment"]
    assert "churn v1 is in dev (revision 1)" in waited.output
    assert "→ `dev`: ✅ reached" in waited.summary
    blob = az.blob_service(request).get_blob_client(azure_app["container"], f"{package.split('/', 3)[3]}/model.json")
    assert blob.get_blob_properties().metadata["modelpilot_sha256"] == version.manifest.artifacts[0].sha256
