"""The Azure functions as the host calls them, against Azurite (Blob + Table Storage).

Each test gets its own container and tables; the app is wired from app settings
exactly as on Azure (``MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING`` names the
setting that holds Azurite's connection string).
"""

from __future__ import annotations

import pytest

from modelpilot.domain.audit import verify_chain
from modelpilot.domain.commands import ApproveModel, PromoteModel, RegisterModel
from modelpilot.exceptions import TransientError
from tests.support.azure_functions import AzureApp, host_blob, host_event, load_event, user_function


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path)
    yield app
    app.close()


def actions(app, model="churn"):
    return [r.action for r in app.registry.audit_records(model)]


@pytest.mark.parametrize("cloudevents", [False, True], ids=["eventgrid", "cloudevents"])
def test_manifest_upload_registers_and_promotes_to_dev(app, cloudevents):
    etag = app.upload_package("churn/v1")
    user_function("model_upload")(host_event(app.blob_event("churn/v1", etag, cloudevents=cloudevents)))
    version = app.registry.get_version("churn", 1)
    assert version.package_uri == f"az://{app.container}/churn/v1"
    assert version.registered_by == "system:eventgrid"
    assert app.registry.get_alias("churn", "dev").version == 1
    assert actions(app) == ["register", "promote"]
    assert app.publisher.names() == ["ModelRegistered", "ModelPromoted"]
    assert verify_chain("churn", app.registry.audit_records("churn")).ok


def test_cloudevents_traceparent_continues_the_trace(app):
    from modelpilot import telemetry

    spans = telemetry.configure_in_memory()
    spans.clear()
    etag = app.upload_package("churn/v1")
    user_function("model_upload")(host_event(app.blob_event("churn/v1", etag, cloudevents=True)))
    register = [s for s in spans.finished_spans() if s.name == "RegisterModel"]
    assert register and f"{register[-1].context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_three_deliveries_of_one_upload_change_state_once(app):
    etag = app.upload_package("churn/v1")
    event = app.blob_event("churn/v1", etag)
    for _ in range(3):
        user_function("model_upload")(host_event(event))
    assert [v.version for v in app.registry.list_versions("churn")] == [1]
    assert len(app.registry.alias_history("churn", "dev")) == 1
    assert actions(app) == ["register", "promote"]
    assert app.publisher.names() == ["ModelRegistered", "ModelPromoted"]


def test_other_blobs_are_ignored(app):
    event = app.blob_event("churn/v1", '"0x1"')
    event["subject"] = event["subject"].replace("modelpilot.json", "model.bin")
    user_function("model_upload")(host_event(event))
    assert app.registry.list_models() == []
    assert app.notifier.sent == []


def test_tampered_package_is_rejected_surfaced_and_changes_nothing(app):
    etag = app.upload_package("churn/v1", tamper=True)
    event = app.blob_event("churn/v1", etag)
    user_function("model_upload")(host_event(event))  # permanent error: no raise, no platform retry
    assert app.registry.list_models() == []
    assert len(app.notifier.sent) == 1
    subject, message = app.notifier.sent[0]
    assert "model_upload" in subject and "model.bin" in message and "sha256" in message
    user_function("model_upload")(host_event(event))  # Event Grid redelivers: remembered, not re-notified
    assert len(app.notifier.sent) == 1
    assert app.registry.list_models() == []


def test_malformed_delivery_is_surfaced_and_changes_nothing(app):
    from modelpilot.entrypoints.azure.events import upload_command
    from modelpilot.entrypoints.azure.runtime import run_event

    event = load_event("eventgrid_blob_created_manifest.json")[0]
    event["data"] = {"api": "PutBlob"}  # no url
    assert user_function("model_upload")(host_event(event)) is None  # returns: Event Grid stops retrying
    reply = run_event(host_event(event), "model_upload", lambda env: upload_command(env, container="models"))
    assert (reply["status"], reply["error"]) == ("failed", "invalid_event")
    assert app.registry.list_models() == []
    assert "url" in app.notifier.sent[0][1]


def test_unreachable_storage_raises_so_the_host_retries(app):
    from azure.storage.blob import BlobServiceClient

    from modelpilot.adapters.azure.blob import BlobArtifactStore
    from tests.support.azure import ACCOUNT, ACCOUNT_KEY

    working = app.bus.services.artifacts
    app.bus.services.artifacts = BlobArtifactStore(
        BlobServiceClient(
            f"http://127.0.0.1:9/{ACCOUNT}",
            credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY},
            retry_total=0,
        )
    )
    etag = app.upload_package("churn/v1")
    event = app.blob_event("churn/v1", etag)
    with pytest.raises(TransientError):
        user_function("model_upload")(host_event(event))
    assert app.notifier.sent == []
    app.bus.services.artifacts = working  # storage is back: the retry is not blocked by a stale claim
    user_function("model_upload")(host_event(event))
    assert app.registry.get_alias("churn", "dev").version == 1


def test_azureml_model_registered_registers_the_tagged_package(app):
    app.upload_package("churn/v1")
    event = load_event("azureml_model_registered_modelpilot.json")[0]
    event["data"]["ModelTags"]["modelpilot_package"] = f"az://{app.container}/churn/v1"
    for _ in range(2):
        user_function("azureml_model_registered")(host_event(event))
    (version,) = app.registry.list_versions("churn")
    assert (version.source, version.external_id) == ("azureml", "azureml:mlw-modelpilot/churn:7")
    assert app.registry.get_alias("churn", "dev") is None
    assert actions(app) == ["register"]


def test_published_azureml_sample_is_rejected_without_side_effects(app):
    user_function("azureml_model_registered")(host_event(load_event("azureml_model_registered.json")))
    assert app.registry.list_models() == []
    assert "modelpilot_package" in app.notifier.sent[0][1]


def _churn_in_prod(app, versions=2):
    for n in range(1, versions + 1):
        app.upload_package(f"churn/v{n}", auc=0.8 + n / 100)
        uri = f"az://{app.container}/churn/v{n}"
        app.bus.handle(RegisterModel(package_uri=uri, actor="alice@contoso.com"))
        for env in ("dev", "staging", "prod"):
            if env == "prod":
                app.bus.handle(ApproveModel("churn", n, "prod", approver="bob@contoso.com"))
            app.bus.handle(PromoteModel("churn", env, actor="alice@contoso.com", version=n))
    assert app.registry.get_alias("churn", "prod").version == versions


def test_monitor_breach_rolls_prod_back_once(app):
    _churn_in_prod(app)
    event = load_event("azureml_run_completed_monitor_breach.json")
    for _ in range(3):
        user_function("azureml_monitor_alarm")(host_event(event))
    prod = app.registry.alias_history("churn", "prod")
    assert [(c.action, c.to_version) for c in prod] == [("promote", 1), ("promote", 2), ("rollback", 1)]
    assert prod[-1].trigger == "azureml-run:churn_prod_monitor_20261120T1100"
    assert actions(app).count("rollback") == 1
    assert verify_chain("churn", app.registry.audit_records("churn")).ok


def manifest_blob(app, prefix):
    blob = app.blob.get_blob_client(app.container, f"{prefix}/modelpilot.json")
    return f"{app.container}/{prefix}/modelpilot.json", blob.download_blob().readall()


def test_blob_trigger_registers_and_promotes(app):
    etag = app.upload_package("churn/v1")
    name, data = manifest_blob(app, "churn/v1")
    stream = host_blob(name, data, etag=etag)
    assert stream.name == name and stream.length == len(data)
    user_function("model_upload_blob")(stream)
    assert app.registry.get_alias("churn", "dev").version == 1
    assert actions(app) == ["register", "promote"]


def test_blob_trigger_and_event_grid_trigger_deduplicate_each_other(app):
    etag = app.upload_package("churn/v1")
    name, data = manifest_blob(app, "churn/v1")
    user_function("model_upload")(host_event(app.blob_event("churn/v1", etag)))
    user_function("model_upload_blob")(host_blob(name, data, etag=etag))
    user_function("model_upload")(host_event(app.blob_event("churn/v1", etag, cloudevents=True)))
    assert [v.version for v in app.registry.list_versions("churn")] == [1]
    assert actions(app) == ["register", "promote"]


def test_blob_trigger_ignores_other_blobs_and_rejects_a_blob_without_etag(app):
    user_function("model_upload_blob")(host_blob(f"{app.container}/churn/v1/model.bin", b"x", etag='"0x1"'))
    assert app.registry.list_models() == [] and app.notifier.sent == []
    app.upload_package("churn/v1")
    name, data = manifest_blob(app, "churn/v1")
    user_function("model_upload_blob")(host_blob(name, data, etag=None))
    assert app.registry.list_models() == []
    assert "ETag" in app.notifier.sent[0][1]
