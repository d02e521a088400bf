"""SageMaker lifecycle stages through the SageMaker registry function, on moto (the real handler, the AWS wiring).

What this proves: the state change carrying ``ModelLifeCycle`` (tests/events) registers and then requests
the mapped promotion; duplicates change nothing; the write-back's echo asks for nothing; other statuses
and bad lifecycles change nothing; and, through the AWS wiring on moto, the write-back's
``UpdateModelPackage`` reaches a model package (moto keeps its approval status). moto drops
``ModelLifeCycle``, so the lifecycle each write-back carries is read here from a recorder put in place of
the adapter (the adapter's request itself is proven in tests/contract/test_lifecycle_sync_contract.py).
"""

from __future__ import annotations

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.audit import verify_chain
from modelpilot.testing import RecordingLifecycleSync
from tests.support.aws import put_policy, upload_package
from tests.support.aws_events import LambdaContext, first_reply_again, handler, handler_stack, load

sagemaker = handler("sagemaker_registry")

POLICY = """\
version: 1
environments: [dev, staging, prod]
defaults:
  environments:
    prod: {approvals: 1}
models:
  churn:
    sagemaker:
      stages: {Development: dev, Staging: staging, Production: prod}
      approval_status: true
"""


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


@pytest.fixture
def moto_package(aws_stack):
    client = aws_stack.client("sagemaker")
    group = f"churn-models-{aws_stack.bucket[-6:]}"
    client.create_model_package_group(ModelPackageGroupName=group)
    return client.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]


@pytest.fixture
def package(aws_stack, make_package):
    put_policy(aws_stack, POLICY)
    key = upload_package(aws_stack, make_package("churn"), "models/churn/sm-1")
    return f"s3://{aws_stack.bucket}/{key.rsplit('/', 1)[0]}"


def change(package, arn, *, stage="Staging", status="Approved", description="ready", modified="2021-02-25T09:12:40Z"):
    event = load("sagemaker_model_package_lifecycle_modelpilot.json")
    event["resources"] = [arn]
    event["detail"].update(ModelPackageArn=arn, LastModifiedTime=modified)
    event["detail"]["CustomerMetadataProperties"] = {"modelpilot:package": package}
    event["detail"]["ModelLifeCycle"] = {"Stage": stage, "StageStatus": status, "StageDescription": description}
    return event


def recorder() -> RecordingLifecycleSync:
    fake = RecordingLifecycleSync()
    get_bus().services.lifecycle_sync["sagemaker"] = fake
    return fake


def registry():
    return get_bus().services.registry


def test_an_approved_stage_registers_then_promotes_and_writes_back_on_moto(package, moto_package):
    reply = sagemaker(change(package, moto_package), LambdaContext())
    assert reply["status"] == "ok", reply
    registered, staged = reply["results"]
    assert registered["status"] == "registered" and registered["promotion"]["status"] == "promoted"
    assert staged["status"] == "promoted" and staged["environment"] == "staging"
    assert registry().get_alias("churn", "staging").version == 1
    # the write-back went through the AWS wiring to moto's UpdateModelPackage (approval_status: true)
    assert staged["follow_ups"][0]["written"] == [
        {"version": 1, "arn": moto_package, "stage": "Staging", "status": "Approved"}
    ]
    described = (
        get_bus().services.lifecycle_sync["sagemaker"].client.describe_model_package(ModelPackageName=moto_package)
    )
    assert described["ModelApprovalStatus"] == "Approved"


def test_the_same_event_three_times_changes_state_once(package):
    arn = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/1"
    fake = recorder()
    replies = [sagemaker(change(package, arn), LambdaContext()) for _ in range(3)]
    assert first_reply_again(replies)
    records = registry().audit_records("churn")
    assert [r.action for r in records] == ["register", "promote", "promote"]
    assert verify_chain("churn", records).ok
    assert [(u.stage, u.stage_status) for u in fake.updates] == [("Development", "Approved"), ("Staging", "Approved")]


def test_the_write_back_comes_back_and_asks_for_nothing(package):
    arn = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/1"
    fake = recorder()
    sagemaker(change(package, arn), LambdaContext())
    written = fake.current[arn]
    actions = [r.action for r in registry().audit_records("churn")]
    echo = change(
        package,
        arn,
        stage=written.stage,
        status=written.stage_status,
        description=written.description,
        modified="2021-02-25T09:13:02Z",
    )
    reply = sagemaker(echo, LambdaContext())
    assert "results" not in reply and reply["duplicate"] is True  # only the registration, answered again
    assert [r.action for r in registry().audit_records("churn")] == actions
    assert len(fake.updates) == 2


def test_a_blocked_stage_is_reported_and_a_later_approval_in_sagemaker_is_heard(package):
    arn = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/1"
    fake = recorder()
    sagemaker(change(package, arn), LambdaContext())
    blocked = sagemaker(change(package, arn, stage="Production", modified="2021-02-26T10:00:00Z"), LambdaContext())
    assert blocked["results"][1]["status"] == "blocked"
    assert (fake.current[arn].stage, fake.current[arn].stage_status) == ("Production", "Rejected")
    # its echo asks for nothing; an approval in ModelPilot, then the stage approved again in SageMaker, promotes
    echo = change(
        package,
        arn,
        stage="Production",
        status="Rejected",
        description=fake.current[arn].description,
        modified="2021-02-26T10:00:01Z",
    )
    assert "results" not in sagemaker(echo, LambdaContext())
    from modelpilot.domain.commands import ApproveModel

    get_bus().handle(ApproveModel(model="churn", version=1, environment="prod", approver="alice"))
    again = sagemaker(change(package, arn, stage="Production", modified="2021-02-27T08:00:00Z"), LambdaContext())
    assert again["results"][1]["status"] == "promoted"
    assert registry().get_alias("churn", "prod").version == 1


@pytest.mark.parametrize(("stage", "status"), [("Staging", "InProgress"), ("Staging", "Rejected"), ("QA", "Approved")])
def test_other_stage_statuses_and_unmapped_stages_change_nothing(package, stage, status):
    arn = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/1"
    recorder()
    reply = sagemaker(change(package, arn, stage=stage, status=status), LambdaContext())
    results = reply.get("results", [reply])
    assert results[0]["status"] == "registered"
    assert all(r["status"] in {"registered", "noop"} for r in results)
    assert registry().get_alias("churn", "staging") is None


@pytest.mark.parametrize(
    "lifecycle",
    [
        {"Stage": "Pre Prod", "StageStatus": "Approved"},
        {"Stage": "Staging"},
        {"Stage": "Staging", "StageStatus": "Approved", "StageDescription": "d" * 1025},
        "Staging",
    ],
)
def test_bad_lifecycles_are_typed_failures_that_change_nothing(package, lifecycle):
    event = change(package, "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/1")
    event["detail"]["ModelLifeCycle"] = lifecycle
    reply = sagemaker(event, LambdaContext())
    assert reply["status"] == "failed" and reply["error"] == "invalid_event"
    assert registry().list_models() == []
