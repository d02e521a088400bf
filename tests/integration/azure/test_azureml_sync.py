"""The Azure ML write-back adapter against a recording Azure Resource Manager stand-in on 127.0.0.1.

The stand-in (tests/support/azureml_stub.py, an HTTP server in this process) holds model version resources in
the shape the ``ModelVersions_Get`` / ``ModelVersions_CreateOrUpdate`` operations of api-version 2024-04-01
return, answers GET with the resource, PUT by storing the body's properties and echoing the resource, and
answers scripted failures with ARM's error body (``{"error": {"code", "message"}}``).

What this proves: the adapter's two requests (method, path, api-version, bearer token, JSON body); that
the PUT sends back every property read (only the two ModelPilot tags change, ``provisioningState`` is
left out) and other environments' tags stay; that an unchanged update PUTs nothing; the error mapping
(404 → NotFound, 429/503 → TransientError, 403 → NotAuthorized, connection refused → TransientError);
and, from a ModelRegistered event through promote, block and rollback, which tags the versions end
with while the decisions stand even when Azure ML refuses. What it cannot prove: how the real service
answers (its validation of the PUT body, its RBAC), nor that it raises no event on a tag change (that
rests on the documented event types, see docs/azure.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelpilot.adapters.azure.azureml_sync import API_VERSION, AzureMlLifecycleSync
from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import PromoteModel, RegisterModel, RollbackModel
from modelpilot.entrypoints.azure.envelope import parse_envelope
from modelpilot.entrypoints.azure.events import model_registered_command
from modelpilot.exceptions import InvalidInput, NotAuthorized, NotFound, TransientError
from modelpilot.policy import load_policy_text
from modelpilot.ports import LifecycleUpdate
from modelpilot.testing import fake_bus
from tests.support.azureml_stub import WORKSPACE_ID, StandIn, StaticToken, azureml_stand_in

EVENT = Path(__file__).parents[2] / "events" / "azureml_model_registered_modelpilot.json"
DIGEST = "b" * 64


@pytest.fixture
def arm():
    with azureml_stand_in() as state:
        yield state


def adapter(arm: StandIn) -> AzureMlLifecycleSync:
    return AzureMlLifecycleSync(StaticToken(), WORKSPACE_ID, endpoint=arm.endpoint)


def update(status: str = "promoted", env: str = "prod", version: str = "7") -> LifecycleUpdate:
    return LifecycleUpdate(
        external_id=f"azureml:mlw-modelpilot/churn:{version}",
        stage=env,
        stage_status=status,
        description=f"v{version} promoted to {env} by alice — gates passed ✓; report sha256:{DIGEST}",
    )


# -- the adapter ------------------------------------------------------------------------
def test_a_write_gets_the_version_and_puts_it_back_with_the_tags_and_every_other_property(arm):
    arm.add("churn", "7", {"team": "retention", "modelpilot.staging": "promoted"})
    before = json.loads(json.dumps(arm.resources[f"{WORKSPACE_ID}/models/churn/versions/7"]["properties"]))
    adapter(arm).write(update())
    get, put = arm.requests
    path = f"{WORKSPACE_ID}/models/churn/versions/7"
    assert (get["method"], get["path"], put["method"], put["path"]) == ("GET", path, "PUT", path)
    assert get["query"]["api-version"] == put["query"]["api-version"] == [API_VERSION]
    assert get["auth"] == put["auth"] == "Bearer stand-in-token"
    sent = json.loads(put["body"])
    assert set(sent) == {"properties"}
    assert "provisioningState" not in sent["properties"]
    expected = {k: v for k, v in before.items() if k != "provisioningState"}
    expected["tags"] = {
        "team": "retention",
        "modelpilot.staging": "promoted",
        "modelpilot.prod": "promoted",
        "modelpilot.prod.report": update().description,
    }
    assert sent["properties"] == expected


def test_writing_the_same_update_twice_puts_once_and_the_token_is_for_resource_manager(arm):
    arm.add("churn", "7")
    credential = StaticToken()
    sync = AzureMlLifecycleSync(credential, WORKSPACE_ID, endpoint=arm.endpoint)
    sync.write(update())
    sync.write(update())
    assert [r["method"] for r in arm.requests] == ["GET", "PUT", "GET"]
    assert credential.scopes[0] == ("https://management.azure.com/.default",)
    assert arm.tags("churn", "7")["modelpilot.prod"] == "promoted"


def test_a_missing_version_is_not_found_and_puts_nothing(arm):
    with pytest.raises(NotFound, match="no such model version"):
        adapter(arm).write(update(version="99"))
    assert [r["method"] for r in arm.requests] == ["GET"]


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_unavailability_are_transient(arm, status):
    arm.add("churn", "7")
    arm.fail = [(status, "TooManyRequests" if status == 429 else "ServiceUnavailable")]
    with pytest.raises(TransientError) as err:
        adapter(arm).write(update())
    assert err.value.retryable and str(status) in err.value.message
    assert arm.tags("churn", "7") == {"team": "retention"}


def test_a_put_that_fails_after_the_get_is_transient_and_changes_nothing(arm):
    arm.add("churn", "7")
    sync = adapter(arm)
    sync.write(update(env="staging"))  # the client's first requests pass
    arm.fail = []
    arm.requests.clear()

    original = arm.answer

    def fail_put(method, path, query, headers, body):
        if method == "PUT":
            arm.fail = [(503, "ServiceUnavailable")]
        return original(method, path, query, headers, body)

    arm.answer = fail_put  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        sync.write(update())
    assert "modelpilot.prod" not in arm.tags("churn", "7")


def test_an_answer_that_is_not_json_is_transient_and_puts_nothing(arm):
    arm.add("churn", "7")
    arm.fail = [(200, "")]
    with pytest.raises(TransientError, match="not JSON"):
        adapter(arm).write(update())
    assert [r["method"] for r in arm.requests] == ["GET"]


def test_a_refusal_is_not_authorized_and_names_the_permission(arm):
    arm.add("churn", "7")
    arm.fail = [(403, "AuthorizationFailed")]
    with pytest.raises(NotAuthorized, match="models/versions/write"):
        adapter(arm).write(update())


def test_an_unreachable_resource_manager_is_transient(arm):
    sync = AzureMlLifecycleSync(StaticToken(), WORKSPACE_ID, endpoint="http://127.0.0.1:9")
    with pytest.raises(TransientError, match="unreachable"):
        sync.write(update())


def test_versions_of_another_workspace_and_bad_settings_are_refused_before_any_request(arm):
    with pytest.raises(InvalidInput, match="belongs to workspace 'other-ws'"):
        adapter(arm).write(
            LifecycleUpdate(
                external_id="azureml:other-ws/churn:7", stage="prod", stage_status="promoted", description=""
            )
        )
    with pytest.raises(InvalidInput, match="MODELPILOT_AZURE_ML_WORKSPACE_ID"):
        AzureMlLifecycleSync(StaticToken(), "/subscriptions/x/workspaces/y")
    with pytest.raises(InvalidInput, match="must be https"):
        AzureMlLifecycleSync(StaticToken(), WORKSPACE_ID, endpoint="http://management.example.com")
    assert arm.requests == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"external_id": "azureml:mlw/churn"}, "external_id"),
        ({"stage": "Prod Env"}, "stage"),
        ({"stage_status": "Approved"}, "stage_status"),
        ({"description": "x" * 1025}, "description"),
        ({"approval_status": "Approved"}, "approval_status"),
    ],
)
def test_azure_ml_updates_are_checked_on_construction(fields, field):
    base = {"external_id": "azureml:mlw/churn:7", "stage": "prod", "stage_status": "promoted", "description": "ok"}
    with pytest.raises(InvalidInput) as err:
        LifecycleUpdate(**{**base, **fields})
    assert err.value.details["field"] == field


# -- from the event to the tags ---------------------------------------------------------
POLICY = """
environments: [dev, staging, prod]
defaults:
  environments:
    prod: {approvals: 1}
models:
  churn:
    azureml: {write_back: true}
"""


def registered(bus, package: str, version: int):
    """Register ``churn:<version>`` as the ModelRegistered event of the workspace does (its external id)."""
    raw = json.loads(EVENT.read_text())
    raw[0]["data"]["ModelVersion"] = version
    translation = model_registered_command(parse_envelope(raw))
    cmd = translation.command
    assert isinstance(cmd, RegisterModel)
    return bus.handle(
        RegisterModel(
            package_uri=package,
            actor=cmd.actor,
            trigger=cmd.trigger,
            source=cmd.source,
            external_id=cmd.external_id,
        )
    )


def test_promote_block_and_rollback_end_as_tags_on_the_azure_ml_versions(arm, make_package):
    arm.add("churn", "7")
    arm.add("churn", "8")
    bus = fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore(), lifecycle_sync={"azureml": adapter(arm)})
    registered(bus, str(make_package("churn")), 7)
    registered(bus, str(make_package("churn")), 8)
    first = bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=1))
    assert arm.tags("churn", "7")["modelpilot.dev"] == "promoted"
    report = arm.tags("churn", "7")["modelpilot.dev.report"]
    assert report.endswith("report sha256:" + first.data["gate_report_digest"])
    promoted = bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=2))
    assert promoted.status == "promoted"
    assert arm.tags("churn", "7")["modelpilot.dev"] == "replaced"
    assert arm.tags("churn", "8")["modelpilot.dev"] == "promoted"
    blocked = bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=2))
    assert blocked.status == "blocked"
    assert arm.tags("churn", "8")["modelpilot.prod"] == "blocked"
    assert "approvals" in arm.tags("churn", "8")["modelpilot.prod.report"]
    bus.handle(RollbackModel(model="churn", environment="dev", actor="system:slo", reason="error budget burn"))
    assert arm.tags("churn", "8")["modelpilot.dev"] == "rolled_back"
    assert arm.tags("churn", "7")["modelpilot.dev"] == "restored"
    assert "error budget burn" in arm.tags("churn", "7")["modelpilot.dev.report"]
    assert arm.tags("churn", "7")["team"] == "retention"  # other tags stay
    assert all(r["method"] in {"GET", "PUT"} for r in arm.requests)


def test_a_failed_write_back_never_undoes_the_promotion(arm, make_package):
    arm.add("churn", "7")
    bus = fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore(), lifecycle_sync={"azureml": adapter(arm)})
    registered(bus, str(make_package("churn")), 7)
    arm.fail = [(429, "TooManyRequests")]
    outcome = bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=1))
    assert outcome.status == "promoted"
    assert bus.services.registry.get_alias("churn", "dev").version == 1
    failed = [f for f in outcome.follow_ups if f.status == "failed"]
    assert failed and failed[0].data["failed"][0]["error"] == "transient"
    assert any("Azure ML write-back failed" in subject for subject, _ in bus.services.notifier.sent)
    assert "modelpilot.dev" not in arm.tags("churn", "7")


# -- wiring -----------------------------------------------------------------------------
def test_the_azure_wiring_builds_the_write_back_only_with_a_workspace_and_the_shared_credential():
    from modelpilot.bootstrap import build_services
    from modelpilot.config import Settings
    from tests.support.azure_transport import StaticCredential

    credential = StaticCredential()
    base = {"backend": "azure", "azure_storage_account_url": "https://mpsa.blob.core.windows.net"}
    assert "azureml" not in build_services(Settings(**base), credential=credential).lifecycle_sync
    svc = build_services(Settings(**base, azure_ml_workspace_id=WORKSPACE_ID), credential=credential)
    sync = svc.lifecycle_sync["azureml"]
    assert isinstance(sync, AzureMlLifecycleSync)
    assert sync.workspace == "mlw-modelpilot" and sync._credential is credential


# -- no loop ----------------------------------------------------------------------------
def test_a_registered_event_after_the_write_back_promotes_nothing_and_writes_nothing(arm, make_package):
    """Tag updates raise no Azure ML event (the documented types are ModelRegistered, ModelDeployed,
    RunCompleted, DatasetDriftDetected, RunStatusChanged); should the PUT ever announce the version as
    registered again, the event carries the same key, asks for no promotion and changes nothing."""
    arm.add("churn", "7")
    bus = fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore(), lifecycle_sync={"azureml": adapter(arm)})
    package = str(make_package("churn"))
    registered(bus, package, 7)
    bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=1))
    requests = len(arm.requests)
    raw = json.loads(EVENT.read_text())
    raw[0]["data"]["ModelTags"].update(arm.tags("churn", "7"))  # the event as it would look after the PUT
    raw[0]["id"] = "another-delivery"
    again = model_registered_command(parse_envelope(raw))
    first = model_registered_command(parse_envelope(json.loads(EVENT.read_text())))
    assert again.key == first.key  # the idempotency store answers the first outcome
    assert isinstance(again.command, RegisterModel) and not again.command.auto_promote
    outcome = registered(bus, package, 7)
    assert outcome.status != "promoted"
    assert [v.version for v in bus.services.registry.list_versions("churn")] == [1]
    assert bus.services.registry.get_alias("churn", "dev").version == 1
    assert len(arm.requests) == requests
