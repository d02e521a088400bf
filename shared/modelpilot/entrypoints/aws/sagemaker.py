"""SageMaker Model Registry: the EventBridge "SageMaker Model Package State Change" event.

How a SageMaker model package maps to a ModelPilot package: the model package's
customer metadata property ``modelpilot:package`` names the package prefix
(``s3://bucket/models/churn/v7``); without it, the folder of the first
container's ``ModelDataUrl`` is the package (``.../output/model.tar.gz`` →
``.../output/``, which must hold ``modelpilot.json`` beside the model). The
model package ARN is the version's ``external_id``.

=========================  ==========================================================
ModelApprovalStatus        action
=========================  ==========================================================
``PendingManualApproval``  register as ``pending_approval`` (gates refuse to promote it)
``Approved``               register (or mark the pending version registered), then
                           promote to the first environment when its gates pass
``Rejected``               register as ``rejected``, or reject the registered version
=========================  ==========================================================

The idempotency key is the ARN plus the status: AWS may deliver the same change
more than once, and a package can move Pending → Approved → Rejected.

Lifecycle stages (``ModelLifeCycle``: ``Stage``, ``StageStatus``, ``StageDescription``) ride on
the same event. When the event carries one with ``StageStatus: Approved`` that ModelPilot did not
write itself (see :func:`modelpilot.service.registry_sync.is_write_back`), a second delivery asks
for :class:`~modelpilot.domain.commands.ApplySourceStage` after the registration: the model's
``sagemaker.stages`` map the stage to an environment and the gates decide. Its key is the ARN,
stage, stage status and the package's ``LastModifiedTime`` (the event id when absent): the same
event delivered twice does nothing more, while a person who approves the stage again (after a
block) is heard. Any other stage status asks for nothing beyond the registration.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from modelpilot.domain.commands import ApplySourceStage, RegisterModel
from modelpilot.entrypoints._validation import validate
from modelpilot.exceptions import InvalidEvent
from modelpilot.service.dispatch import Delivery

if TYPE_CHECKING:
    from modelpilot.domain.model import VersionStatus

__all__ = [
    "ACTOR",
    "PACKAGE_PROPERTY",
    "SageMakerDetail",
    "SageMakerEvent",
    "SageMakerLifeCycle",
    "deliveries",
    "delivery",
    "idempotency_key",
    "package_uri",
    "parse",
    "to_command",
]

ACTOR = "system:sagemaker"
PACKAGE_PROPERTY = "modelpilot:package"
DETAIL_TYPE = "SageMaker Model Package State Change"


class _Container(BaseModel):
    model_config = ConfigDict(extra="allow")
    ModelDataUrl: str | None = None


class _Inference(BaseModel):
    model_config = ConfigDict(extra="allow")
    Containers: list[_Container] = Field(default_factory=list)


class SageMakerLifeCycle(BaseModel):
    """A model package's ``ModelLifeCycle`` (SageMaker's staging construct)."""

    model_config = ConfigDict(extra="allow")
    Stage: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    StageStatus: str = Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
    StageDescription: str | None = Field(default=None, max_length=1024)


class SageMakerDetail(BaseModel):
    """The ``detail`` of a model package state change (the fields ModelPilot reads)."""

    model_config = ConfigDict(extra="allow")
    ModelPackageArn: str = Field(pattern=r"^arn:aws[a-z-]*:sagemaker:")
    ModelPackageGroupName: str | None = None
    ModelPackageVersion: int | None = None
    ModelApprovalStatus: Literal["Approved", "Rejected", "PendingManualApproval"]
    InferenceSpecification: _Inference | None = None
    CustomerMetadataProperties: dict[str, str] = Field(default_factory=dict)
    ModelLifeCycle: SageMakerLifeCycle | None = None
    #: an ISO 8601 string in the samples; whatever its JSON type, it only tells one update from the next
    LastModifiedTime: str | int | float | None = None


class SageMakerEvent(EventBridgeModel):
    """The EventBridge envelope with a typed SageMaker ``detail``."""

    detail_type: Literal["SageMaker Model Package State Change"] = Field(alias="detail-type")
    source: Literal["aws.sagemaker"]
    detail: SageMakerDetail


def parse(event: Any) -> SageMakerDetail:
    """Return the validated detail of a SageMaker model package state change."""
    parsed: SageMakerEvent = validate(SageMakerEvent, event, "SageMaker Model Package State Change event")
    return parsed.detail


def package_uri(detail: SageMakerDetail) -> str:
    """Return the ModelPilot package prefix of a model package (see the module docstring)."""
    uri = detail.CustomerMetadataProperties.get(PACKAGE_PROPERTY)
    if uri is None:
        containers = detail.InferenceSpecification.Containers if detail.InferenceSpecification else []
        data_url = next((c.ModelDataUrl for c in containers if c.ModelDataUrl), None)
        if data_url is None:
            raise InvalidEvent(
                f"{detail.ModelPackageArn} has neither the customer metadata property "
                f"{PACKAGE_PROPERTY!r} nor a container ModelDataUrl",
                field="detail",
            )
        uri = posixpath.dirname(data_url)
    if not uri.startswith("s3://"):
        raise InvalidEvent(f"{detail.ModelPackageArn}: package {uri!r} is not an s3:// URI", field="detail")
    return uri.rstrip("/")


def idempotency_key(detail: SageMakerDetail) -> str:
    """The business key: model package ARN + approval status."""
    return f"sagemaker:{detail.ModelPackageArn}#{detail.ModelApprovalStatus}"


def to_command(detail: SageMakerDetail) -> RegisterModel:
    """Return the registration this state change asks for."""
    status: dict[str, VersionStatus] = {
        "Approved": "registered",
        "Rejected": "rejected",
        "PendingManualApproval": "pending_approval",
    }
    return RegisterModel(
        package_uri=package_uri(detail),
        actor=ACTOR,
        source="sagemaker",
        external_id=detail.ModelPackageArn,
        status=status[detail.ModelApprovalStatus],
        auto_promote=detail.ModelApprovalStatus == "Approved",
        trigger=f"{detail.ModelPackageArn}#{detail.ModelApprovalStatus}",
    )


def delivery(event: Any) -> Delivery:
    """Return the registration one model package state change asks for, keyed by ARN + approval status."""
    detail = parse(event)
    return Delivery(detail.ModelPackageArn, to_command(detail), idempotency_key(detail))


def stage_delivery(detail: SageMakerDetail, event_id: str) -> Delivery | None:
    """Return the promotion request of an approved lifecycle stage, or None when the event asks for none."""
    from modelpilot.policy.registries import APPROVED
    from modelpilot.service.registry_sync import is_write_back

    life = detail.ModelLifeCycle
    if life is None or life.StageStatus != APPROVED:
        return None
    if is_write_back(life.Stage, life.StageStatus, life.StageDescription):
        return None
    arn = detail.ModelPackageArn
    when = event_id if detail.LastModifiedTime is None else str(detail.LastModifiedTime)
    trigger = f"{arn}#{life.Stage}#{life.StageStatus}"
    command = ApplySourceStage(
        package_uri=package_uri(detail),
        external_id=arn,
        stage=life.Stage,
        stage_status=life.StageStatus,
        actor=ACTOR,
        trigger=trigger,
    )
    return Delivery(arn, command, f"sagemaker:{trigger}#{when}")


def deliveries(event: Any) -> Delivery | list[Delivery]:
    """Return what one state change asks for: the registration, then an approved stage's promotion request.

    An event without an approved lifecycle stage (or with the one ModelPilot wrote) is one delivery,
    replied as before; with one, a batch of two, in order (the registration must exist first).
    """
    parsed: SageMakerEvent = validate(SageMakerEvent, event, "SageMaker Model Package State Change event")
    detail = parsed.detail
    first = Delivery(detail.ModelPackageArn, to_command(detail), idempotency_key(detail))
    stage = stage_delivery(detail, parsed.id)
    return first if stage is None else [first, stage]
