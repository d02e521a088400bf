"""SageMaker Model Registry function: model package state changes through the handler, on moto."""

from __future__ import annotations

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.audit import verify_chain
from tests.support.aws import upload_package
from tests.support.aws_events import LambdaContext, first_reply_again, handler, handler_stack, load, sagemaker_change

sagemaker = handler("sagemaker_registry")


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def registry():
    return get_bus().services.registry


@pytest.fixture
def package(aws_stack, make_package):
    key = upload_package(aws_stack, make_package("churn"), "models/churn/sm-1")
    return f"s3://{aws_stack.bucket}/{key.rsplit('/', 1)[0]}"


def test_pending_registers_without_promoting(aws_stack, package):
    reply = sagemaker(sagemaker_change("PendingManualApproval", package), LambdaContext())
    assert reply["status"] == "registered"
    version = registry().get_version("churn", 1)
    assert version.status == "pending_approval" and version.source == "sagemaker"
    assert version.external_id.endswith("model-package/churn-models/1")
    assert registry().get_alias("churn", "dev") is None


def test_approved_after_pending_marks_registered_and_promotes(aws_stack, package):
    sagemaker(sagemaker_change("PendingManualApproval", package), LambdaContext())
    reply = sagemaker(sagemaker_change("Approved", package), LambdaContext())
    assert reply["status"] == "approved_in_source"
    assert reply["promotion"]["status"] == "promoted"
    assert registry().get_version("churn", 1).status == "registered"
    assert registry().get_alias("churn", "dev").version == 1
    assert [r.action for r in registry().audit_records("churn")] == ["register", "source_approve", "promote"]


def test_approved_directly_registers_and_promotes(aws_stack, package):
    reply = sagemaker(sagemaker_change("Approved", package), LambdaContext())
    assert reply["status"] == "registered" and reply["promotion"]["status"] == "promoted"


def test_rejected_marks_the_registered_version_rejected(aws_stack, package):
    sagemaker(sagemaker_change("PendingManualApproval", package), LambdaContext())
    reply = sagemaker(sagemaker_change("Rejected", package), LambdaContext())
    assert reply["follow_ups"][0]["status"] == "rejected"
    assert registry().get_version("churn", 1).status == "rejected"
    assert registry().get_alias("churn", "dev") is None


def test_rejected_unknown_package_registers_it_as_rejected(aws_stack, package):
    reply = sagemaker(sagemaker_change("Rejected", package), LambdaContext())
    assert reply["status"] == "registered"
    assert registry().get_version("churn", 1).status == "rejected"


@pytest.mark.parametrize("status", ["PendingManualApproval", "Approved", "Rejected"])
def test_each_status_delivered_three_times_changes_state_once(aws_stack, package, status):
    event = sagemaker_change(status, package)
    replies = [sagemaker(event, LambdaContext()) for _ in range(3)]
    assert first_reply_again(replies)
    records = registry().audit_records("churn")
    expected = {"PendingManualApproval": ["register"], "Approved": ["register", "promote"], "Rejected": ["register"]}[
        status
    ]
    assert [r.action for r in records] == expected
    assert verify_chain("churn", records).ok


def test_model_data_url_folder_is_the_package_without_metadata(aws_stack, make_package):
    upload_package(aws_stack, make_package("churn"), "models/churn/output")
    event = sagemaker_change("PendingManualApproval", "unused")
    del event["detail"]["CustomerMetadataProperties"]
    event["detail"]["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] = (
        f"s3://{aws_stack.bucket}/models/churn/output/model.tar.gz"
    )
    assert sagemaker(event, LambdaContext())["status"] == "registered"
    assert registry().get_version("churn", 1).package_uri == f"s3://{aws_stack.bucket}/models/churn/output"


def test_documented_sample_without_a_package_fails_cleanly(aws_stack):
    reply = sagemaker(load("sagemaker_model_package_state_change.json"), LambdaContext())
    # the sample's ModelDataUrl folder holds no modelpilot.json (its bucket is not ours): typed, nothing written
    assert reply["status"] == "failed" and reply["error"] in {"manifest_missing", "error"}
    assert registry().list_models() == []


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: e["detail"].pop("ModelPackageArn"),
        lambda e: e["detail"].update(ModelApprovalStatus="Maybe"),
        lambda e: e.update({"detail-type": "Something Else"}),
        lambda e: e["detail"].update(CustomerMetadataProperties={"modelpilot:package": "https://example.com/x"}),
        lambda e: e.pop("detail"),
    ],
)
def test_bad_events_are_typed_failures(aws_stack, package, mutate):
    event = sagemaker_change("Approved", package)
    mutate(event)
    reply = sagemaker(event, LambdaContext())
    assert reply["status"] == "failed" and reply["error"] == "invalid_event"
    assert registry().list_models() == []
