"""SageMaker lifecycle stages both ways, on the fakes: the policy block, stage requests, write-back, no loops.

What this proves: the mapping and its validation; that an approved stage promotes through the gates (and a
block is reported and written back); which versions get which ``ModelLifeCycle`` on promote, block and
rollback; that the write-back's own state change is recognised and asks for nothing (the loop); that a
failed write-back leaves the decision standing and is surfaced. What it cannot: the request SageMaker
receives (tests/contract/test_lifecycle_sync_contract.py) and the event on a real stack.
"""

from __future__ import annotations

import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import ApplySourceStage, ApproveModel, PromoteModel, RegisterModel, RollbackModel
from modelpilot.entrypoints.aws.sagemaker import SageMakerDetail, stage_delivery
from modelpilot.exceptions import PolicyError, TransientError
from modelpilot.policy import load_policy_text
from modelpilot.service.registry_sync import MARKER, describe, is_write_back
from modelpilot.testing import fake_bus

ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/{}"

POLICY = """
environments: [dev, staging, prod]
defaults:
  environments:
    prod: {approvals: 1}
models:
  churn:
    sagemaker:
      stages: {Development: dev, Staging: staging, Production: prod}
      {extra}
"""


def make_bus(extra: str = ""):
    return fake_bus(load_policy_text(POLICY.replace("{extra}", extra)), artifacts=FolderArtifactStore())


@pytest.fixture
def bus():
    return make_bus()


def writes(bus):
    return bus.services.lifecycle_sync["sagemaker"].updates


def current(bus, n):
    return bus.services.lifecycle_sync["sagemaker"].current[ARN.format(n)]


def register(bus, pkg, n, *, auto_promote=True):
    return bus.handle(
        RegisterModel(
            package_uri=str(pkg),
            actor="system:sagemaker",
            source="sagemaker",
            external_id=ARN.format(n),
            auto_promote=auto_promote,
            trigger=f"{ARN.format(n)}#Approved",
        )
    )


def stage(bus, pkg, n, name, status="Approved"):
    return bus.handle(
        ApplySourceStage(
            package_uri=str(pkg),
            external_id=ARN.format(n),
            stage=name,
            stage_status=status,
            actor="system:sagemaker",
            trigger=f"{ARN.format(n)}#{name}#{status}",
        )
    )


# -- the policy block -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ("stages: {Production: live}", "not in"),
        ("stages: {Production: prod, Prod2: prod}", "mapped from both"),
        ("stages: {'bad stage': prod}", "not a SageMaker stage name"),
        ("stages: {}", "at least 1"),
        ("stages: {Production: prod}\n      superseded_status: Approved", "must differ"),
        ("stages: {Production: prod}\n      write_bak: true", "write_bak"),
    ],
)
def test_bad_sagemaker_blocks_are_policy_errors_naming_the_problem(block, fragment):
    text = f"environments: [dev, staging, prod]\nmodels:\n  churn:\n    sagemaker:\n      {block}\n"
    with pytest.raises(PolicyError) as err:
        load_policy_text(text)
    assert fragment in str(err.value)


def test_a_model_without_its_own_block_takes_the_defaults():
    policy = load_policy_text("defaults:\n  sagemaker:\n    stages: {Production: prod}\nmodels:\n  churn: {}\n")
    sync = policy.model_policy("churn").sagemaker
    assert sync is not None and sync.stage_of("prod") == "Production" and sync.environment_of("Staging") is None
    assert sync.write_back and not sync.approval_status and sync.superseded_status == "Archived"


# -- inbound ----------------------------------------------------------------------------
def test_registration_auto_promotes_to_dev_and_writes_development_approved(bus, make_package):
    reply = register(bus, make_package("churn"), 1)
    promoted = reply.data["promotion"]
    assert promoted["status"] == "promoted"
    update = current(bus, 1)
    assert (update.stage, update.stage_status, update.approval_status) == ("Development", "Approved", None)
    assert update.description.startswith("[modelpilot Development/Approved] churn v1 promoted to dev")
    assert update.description.endswith(f"report sha256:{promoted['gate_report_digest']}")


def test_an_approved_stage_promotes_to_its_environment(bus, make_package):
    pkg = make_package("churn")
    register(bus, pkg, 1)
    outcome = stage(bus, pkg, 1, "Staging")
    assert outcome.status == "promoted" and outcome.data["environment"] == "staging"
    assert bus.services.registry.get_alias("churn", "staging").version == 1
    assert (current(bus, 1).stage, current(bus, 1).stage_status) == ("Staging", "Approved")


def test_a_blocked_stage_request_is_reported_and_written_back_rejected(bus, make_package):
    pkg = make_package("churn")
    register(bus, pkg, 1)
    stage(bus, pkg, 1, "Staging")
    outcome = stage(bus, pkg, 1, "Production")
    assert outcome.status == "blocked" and "approvals" in outcome.message
    assert bus.services.registry.get_alias("churn", "prod") is None
    update = current(bus, 1)
    assert (update.stage, update.stage_status) == ("Production", "Rejected")
    assert "approvals" in update.description
    assert update.description.endswith(f"report sha256:{outcome.data['gate_report_digest']}")
    # the gates decide: with the approval, the same request (approved again in SageMaker) promotes
    bus.handle(ApproveModel(model="churn", version=1, environment="prod", approver="alice"))
    again = stage(bus, pkg, 1, "Production")
    assert again.status == "promoted", again.message
    assert (current(bus, 1).stage, current(bus, 1).stage_status) == ("Production", "Approved")


@pytest.mark.parametrize(
    ("name", "status"), [("Staging", "PendingApproval"), ("Staging", "Rejected"), ("QA", "Approved")]
)
def test_other_statuses_and_unmapped_stages_change_nothing(bus, make_package, name, status):
    pkg = make_package("churn")
    register(bus, pkg, 1)
    before = len(writes(bus))
    outcome = stage(bus, pkg, 1, name, status)
    assert outcome.status == "noop" and outcome.events == []
    assert bus.services.registry.get_alias("churn", "staging") is None
    assert len(writes(bus)) == before


def test_a_model_without_a_sagemaker_block_is_never_written_back(make_package):
    bus = fake_bus(load_policy_text("environments: [dev, prod]\n"), artifacts=FolderArtifactStore())
    pkg = make_package("churn")
    register(bus, pkg, 1)
    assert stage(bus, pkg, 1, "Production").status == "noop"
    assert writes(bus) == []


def test_write_back_off_still_hears_stage_requests(make_package):
    bus = make_bus("write_back: false")
    pkg = make_package("churn")
    register(bus, pkg, 1)
    assert stage(bus, pkg, 1, "Staging").status == "promoted"
    assert writes(bus) == []


def test_approval_status_is_written_only_with_a_promotion(make_package):
    bus = make_bus("approval_status: true")
    pkg = make_package("churn")
    register(bus, pkg, 1)
    assert current(bus, 1).approval_status == "Approved"
    stage(bus, pkg, 1, "Production")  # blocked: no approval
    assert (current(bus, 1).stage_status, current(bus, 1).approval_status) == ("Rejected", None)


# -- outbound: which version gets what ----------------------------------------------------
def test_replaced_and_rolled_back_versions_are_archived_and_the_restored_one_approved(bus, make_package):
    one, two = make_package("churn"), make_package("churn")
    register(bus, one, 1)
    stage(bus, one, 1, "Staging")
    register(bus, two, 2)  # v2 replaces v1 in dev, but v1 is in staging (later): v1 keeps Staging/Approved
    assert (current(bus, 1).stage, current(bus, 1).stage_status) == ("Staging", "Approved")
    stage(bus, two, 2, "Staging")  # v2 replaces v1 in staging, which no later environment holds
    assert (current(bus, 1).stage, current(bus, 1).stage_status) == ("Staging", "Archived")
    assert "replaced by v2" in current(bus, 1).description
    bus.handle(RollbackModel(model="churn", environment="staging", actor="system:slo", reason="error budget burn"))
    assert (current(bus, 2).stage, current(bus, 2).stage_status) == ("Staging", "Archived")
    assert "rolled back from staging to v1" in current(bus, 2).description
    assert (current(bus, 1).stage, current(bus, 1).stage_status) == ("Staging", "Approved")
    assert "error budget burn" in current(bus, 1).description


def test_versions_from_uploads_are_not_written_back(bus, make_package):
    bus.handle(RegisterModel(package_uri=str(make_package("churn")), actor="alice", auto_promote=True))
    assert bus.services.registry.get_alias("churn", "dev").version == 1
    assert writes(bus) == []


def test_a_failed_write_back_leaves_the_promotion_standing_and_is_surfaced(bus, make_package):
    pkg = make_package("churn")
    register(bus, pkg, 1)
    bus.services.lifecycle_sync["sagemaker"].fail = TransientError("SageMaker is throttling")
    outcome = stage(bus, pkg, 1, "Staging")
    assert outcome.status == "promoted"
    assert bus.services.registry.get_alias("churn", "staging").version == 1
    assert outcome.follow_ups[0].status == "failed" and outcome.follow_ups[0].data["failed"][0]["error"] == "transient"
    assert any("write-back failed" in subject for subject, _ in bus.services.notifier.sent)


def test_descriptions_fit_1024_characters_and_keep_the_report_digest():
    text = describe("Production", "Rejected", "x" * 5000, keep="; report sha256:" + "a" * 64)
    assert len(text) == 1024 and text.endswith("a" * 64) and "…" in text
    assert text.startswith(MARKER.format(stage="Production", status="Rejected"))


# -- the loop ------------------------------------------------------------------------------
def _echo(update):
    """The state change SageMaker announces after the write-back: the package with what ModelPilot wrote."""
    return SageMakerDetail.model_validate(
        {
            "ModelPackageArn": update.external_id,
            "ModelApprovalStatus": "Approved",
            "CustomerMetadataProperties": {"modelpilot:package": "s3://models/churn/v1"},
            "ModelLifeCycle": {
                "Stage": update.stage,
                "StageStatus": update.stage_status,
                "StageDescription": update.description,
            },
        }
    )


def test_the_write_back_echo_asks_for_nothing_and_a_persons_change_is_heard(bus, make_package):
    one, two = make_package("churn"), make_package("churn")
    register(bus, one, 1)
    stage(bus, one, 1, "Staging")
    register(bus, two, 2)
    stage(bus, two, 2, "Staging")
    bus.handle(RollbackModel(model="churn", environment="staging", actor="system:slo", reason="burn"))
    # v2's echo of the promotion arriving after the rollback would undo it, were it a request: it is not one
    promoted_v2 = next(u for u in writes(bus) if u.external_id == ARN.format(2) and u.stage_status == "Approved")
    assert stage_delivery(_echo(promoted_v2), "event-id") is None
    assert all(stage_delivery(_echo(u), "event-id") is None for u in writes(bus))
    # a person moving the stage while leaving ModelPilot's description is a request again
    person = _echo(promoted_v2).model_copy(deep=True)
    person.ModelLifeCycle.Stage = "Production"  # type: ignore[union-attr]
    assert stage_delivery(person, "event-id") is not None


def test_even_an_unmarked_echo_of_a_promotion_changes_nothing(bus, make_package):
    pkg = make_package("churn")
    register(bus, pkg, 1)
    stage(bus, pkg, 1, "Staging")
    count = len(writes(bus))
    again = stage(bus, pkg, 1, "Staging")
    assert again.status == "unchanged" and again.events == []
    assert len(writes(bus)) == count


def test_a_stage_request_applied_once_never_undoes_a_later_rollback(bus, make_package):
    one, two = make_package("churn"), make_package("churn")
    register(bus, one, 1)
    stage(bus, one, 1, "Staging")
    register(bus, two, 2)
    assert stage(bus, two, 2, "Staging").status == "promoted"
    bus.handle(RollbackModel(model="churn", environment="staging", actor="system:slo", reason="burn"))
    # SageMaker still reads Staging/Approved for v2 (say write-back is failing); a later update of the package
    # re-sends that lifecycle under a new key: the trigger was applied already, the rollback stands
    again = stage(bus, two, 2, "Staging")
    assert again.status == "unchanged" and "already applied" in again.message
    assert bus.services.registry.get_alias("churn", "staging").version == 1


def test_is_write_back_reads_only_a_leading_marker():
    assert is_write_back("Staging", "Approved", "[modelpilot Staging/Approved] churn v1 promoted")
    assert not is_write_back("Staging", "Approved", "[modelpilot Staging/Rejected] churn v1 blocked")
    assert not is_write_back("Staging", "Approved", "ok [modelpilot Staging/Approved]")
    assert not is_write_back("Staging", "Approved", None)


def test_a_promotion_by_an_operator_is_written_back_too(bus, make_package):
    pkg = make_package("churn")
    register(bus, pkg, 1)
    bus.handle(PromoteModel(model="churn", environment="staging", actor="alice", version=1))
    assert (current(bus, 1).stage, current(bus, 1).stage_status) == ("Staging", "Approved")
    assert "by alice" in current(bus, 1).description


def test_the_stage_requests_key_holds_the_stage_its_status_and_the_modification_time():
    def detail(**kw):
        base = {
            "ModelPackageArn": ARN.format(1),
            "ModelApprovalStatus": "Approved",
            "CustomerMetadataProperties": {"modelpilot:package": "s3://models/churn/v1"},
            "ModelLifeCycle": {"Stage": "Staging", "StageStatus": "Approved"},
        }
        return SageMakerDetail.model_validate({**base, **kw})

    key = stage_delivery(detail(LastModifiedTime="2021-02-25T09:12:40Z"), "event-1").key
    assert key == f"sagemaker:{ARN.format(1)}#Staging#Approved#2021-02-25T09:12:40Z"
    assert stage_delivery(detail(LastModifiedTime="2021-02-25T09:12:40Z"), "event-2").key == key  # redelivered
    assert stage_delivery(detail(LastModifiedTime="2021-02-26T08:00:00Z"), "event-3").key != key  # approved again
    assert stage_delivery(detail(), "event-4").key.endswith("#Staging#Approved#event-4")
    assert stage_delivery(detail(LastModifiedTime=1614244360), "event-5").key.endswith("#1614244360")
