"""One contract for every LifecycleSync: what the source registry holds after a write-back is what was written.

Every implementation must:

* set the package's lifecycle to exactly the update's stage, status and description (non-ASCII and
  1024 characters included), and its approval status only when the update names one;
* leave the package as the first write did when the same update is written twice;
* raise ``NotFound`` for a package the registry does not hold.

Azure ML versions (``azureml:<workspace>/<model>:<version>``) hold the same contract over the tags
``modelpilot.<stage>`` / ``modelpilot.<stage>.report``: the fake and the Azure ML adapter against a recording Resource
Manager stand-in on 127.0.0.1 (tests/support/azureml_stub.py).

Run against the fake (``modelpilot.testing``) and the SageMaker adapter speaking to a recording SageMaker
endpoint on 127.0.0.1 (tests/support/sagemaker_stub.py): the adapter's requests are serialised by botocore
and validated against the SageMaker service model before they leave, so a request shape SageMaker's API
does not define fails here. The adapter-only tests below prove the error mapping and, on moto, that a
server implementing ``UpdateModelPackage`` takes the request (moto keeps the approval status and drops
``ModelLifeCycle``, which it does not implement). What none of this proves: how the real SageMaker
service answers (its IAM condition keys, its event after the update).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from botocore.validate import ParamValidator

from modelpilot.adapters.aws.sagemaker_sync import SageMakerLifecycleSync
from modelpilot.exceptions import InvalidInput, ModelPilotError, NotFound, TransientError
from modelpilot.ports import LifecycleSync, LifecycleUpdate
from modelpilot.testing import RecordingLifecycleSync
from tests.support.sagemaker_stub import sagemaker_stub

ARN = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/3"
OTHER = "arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/99"
DESCRIPTION = "[modelpilot Production/Approved] churn v3 promoted to prod — gates passed ✓; report sha256:" + "a" * 64


@dataclass
class Case:
    sync: LifecycleSync
    state: Any  # () -> {arn: {"ModelLifeCycle": …, "ModelApprovalStatus": …}}


def _fake_state(fake: RecordingLifecycleSync) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for update in fake.updates:
        entry = state.setdefault(update.external_id, {})
        entry["ModelLifeCycle"] = {
            "Stage": update.stage,
            "StageStatus": update.stage_status,
            "StageDescription": update.description,
        }
        if update.approval_status is not None:
            entry["ModelApprovalStatus"] = update.approval_status
    return state


@pytest.fixture(params=["fake", "sagemaker"])
def case(request):
    if request.param == "fake":
        fake = RecordingLifecycleSync(packages={ARN})
        yield Case(fake, lambda: _fake_state(fake))
        return
    with sagemaker_stub([ARN]) as stub:
        yield Case(SageMakerLifecycleSync(stub.client), lambda: {a: s for a, s in stub.packages.items() if s})


def update(**kw: Any) -> LifecycleUpdate:
    return LifecycleUpdate(
        **{"external_id": ARN, "stage": "Production", "stage_status": "Approved", "description": DESCRIPTION, **kw}
    )


def test_the_lifecycle_arrives_exactly_without_an_approval_status(case):
    case.sync.write(update())
    assert case.state() == {
        ARN: {"ModelLifeCycle": {"Stage": "Production", "StageStatus": "Approved", "StageDescription": DESCRIPTION}}
    }


def test_an_approval_status_arrives_when_named(case):
    case.sync.write(update(approval_status="Approved"))
    assert case.state()[ARN]["ModelApprovalStatus"] == "Approved"


def test_a_description_of_1024_characters_arrives_whole(case):
    text = ("é✓" * 600)[:1024]
    case.sync.write(update(description=text))
    assert case.state()[ARN]["ModelLifeCycle"]["StageDescription"] == text


def test_writing_twice_leaves_the_first_writes_state(case):
    case.sync.write(update(stage_status="Rejected"))
    first = case.state()
    case.sync.write(update(stage_status="Rejected"))
    assert case.state() == first


def test_an_unknown_package_is_not_found(case):
    with pytest.raises(NotFound):
        case.sync.write(update(external_id=OTHER))
    assert case.state() == {}


# -- the update itself: what SageMaker would refuse never reaches an adapter --------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("external_id", "arn:aws:s3:::bucket/key"),
        ("stage", "Pre Production"),
        ("stage_status", "-Approved"),
        ("stage", "x" * 64),
        ("description", "d" * 1025),
        ("approval_status", "Maybe"),
    ],
)
def test_updates_sagemaker_would_refuse_are_invalid_input(field, value):
    with pytest.raises(InvalidInput) as err:
        update(**{field: value})
    assert err.value.details["field"] == field


def test_the_adapters_request_passes_botocores_validation_of_update_model_package():
    import botocore.session

    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("UpdateModelPackage")
    request = SageMakerLifecycleSync.request(update(approval_status="Approved", description="d" * 1024))
    assert not ParamValidator().validate(request, shape.input_shape).has_errors()
    lifecycle = shape.input_shape.members["ModelLifeCycle"]
    assert set(request["ModelLifeCycle"]) == set(lifecycle.members)  # every member the API defines, no other
    # and botocore refuses what the API does not define (the adapter's shape is checked, not assumed)
    wrong = {**request, "ModelLifeCycle": {"Stage": "Production", "Status": "Approved"}}
    assert ParamValidator().validate(wrong, shape.input_shape).has_errors()


# -- the SageMaker adapter's errors -----------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (400, "ThrottlingException", TransientError),
        (400, "ConflictException", TransientError),
        (500, "InternalFailure", TransientError),
        (400, "AccessDeniedException", ModelPilotError),
    ],
)
def test_refusals_are_typed_retryable_or_not(status, code, error):
    with sagemaker_stub([ARN]) as stub:
        stub.fail = (status, code)
        with pytest.raises(error) as err:
            SageMakerLifecycleSync(stub.client).write(update())
    assert err.value.retryable == (error is TransientError)
    assert code in err.value.message or err.value.details.get("aws_error") == code


def test_an_unreachable_endpoint_is_transient():
    import boto3
    from botocore.config import Config

    from tests.support.aws import CREDENTIALS, REGION
    from tests.support.cloudwatch_errors import closed_port

    config = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1)
    client = boto3.session.Session(region_name=REGION, **CREDENTIALS).client(
        "sagemaker", endpoint_url=closed_port(), config=config
    )
    with pytest.raises(TransientError):
        SageMakerLifecycleSync(client).write(update())


def test_the_client_is_built_on_first_write_only():
    built: list[str] = []
    with sagemaker_stub([ARN]) as stub:
        sync = SageMakerLifecycleSync(factory=lambda: built.append("sagemaker") or stub.client)
        assert built == []
        sync.write(update())
        sync.write(update())
    assert built == ["sagemaker"]


# -- on moto: a server implementing UpdateModelPackage takes the request -------------------------
@pytest.fixture
def moto_package(request):
    from tests.support.aws import client, moto_endpoint, unique

    sagemaker = client("sagemaker", moto_endpoint(request))
    group = unique("churn-models")
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "123456789012.dkr.ecr.us-east-2.amazonaws.com/churn:1"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    return sagemaker, arn


def test_on_moto_the_write_back_is_accepted_and_its_approval_status_kept(moto_package):
    sagemaker, arn = moto_package
    SageMakerLifecycleSync(sagemaker).write(update(external_id=arn, approval_status="Approved"))
    assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"


def test_on_moto_an_unknown_package_is_not_found(moto_package):
    sagemaker, arn = moto_package
    with pytest.raises(NotFound):
        SageMakerLifecycleSync(sagemaker).write(update(external_id=arn.rsplit("/", 1)[0] + "/4242"))


# -- Azure ML: the same contract over the version's tags ------------------------------------------
AZUREML_ID = "azureml:mlw-modelpilot/churn:7"
AZUREML_OTHER = "azureml:mlw-modelpilot/churn:99"


def _fake_tags(fake: RecordingLifecycleSync) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for u in fake.updates:
        tags.setdefault(u.external_id, {}).update(
            {f"modelpilot.{u.stage}": u.stage_status, f"modelpilot.{u.stage}.report": u.description}
        )
    return tags


@pytest.fixture(params=["fake", "azureml"])
def azureml_case(request):
    if request.param == "fake":
        fake = RecordingLifecycleSync(packages={AZUREML_ID})
        yield Case(fake, lambda: _fake_tags(fake))
        return
    from modelpilot.adapters.azure.azureml_sync import AzureMlLifecycleSync
    from tests.support.azureml_stub import WORKSPACE_ID, StaticToken, azureml_stand_in

    with azureml_stand_in() as arm:
        arm.add("churn", "7", {})

        def state() -> dict[str, dict[str, str]]:
            tags = {k: v for k, v in arm.tags("churn", "7").items() if k.startswith("modelpilot.")}
            return {AZUREML_ID: tags} if tags else {}

        yield Case(AzureMlLifecycleSync(StaticToken(), WORKSPACE_ID, endpoint=arm.endpoint), state)


def azureml_update(**kw: Any) -> LifecycleUpdate:
    fields = {"external_id": AZUREML_ID, "stage": "prod", "stage_status": "promoted", "description": DESCRIPTION}
    return LifecycleUpdate(**{**fields, **kw})


def test_azureml_the_status_and_report_arrive_exactly(azureml_case):
    text = ("é✓" * 600)[:1024]
    azureml_case.sync.write(azureml_update(description=text))
    azureml_case.sync.write(azureml_update(stage="staging", stage_status="blocked"))
    assert azureml_case.state() == {
        AZUREML_ID: {
            "modelpilot.prod": "promoted",
            "modelpilot.prod.report": text,
            "modelpilot.staging": "blocked",
            "modelpilot.staging.report": DESCRIPTION,
        }
    }


def test_azureml_writing_twice_leaves_the_first_writes_state(azureml_case):
    azureml_case.sync.write(azureml_update(stage_status="rolled_back"))
    first = azureml_case.state()
    azureml_case.sync.write(azureml_update(stage_status="rolled_back"))
    assert azureml_case.state() == first


def test_azureml_an_unknown_version_is_not_found(azureml_case):
    with pytest.raises(NotFound):
        azureml_case.sync.write(azureml_update(external_id=AZUREML_OTHER))
    assert azureml_case.state() == {}
