"""The ``sagemaker`` and ``azureml`` blocks of a model's policy: write-back to the registry a version came from.

``azureml`` (see ``docs/azure.md``, Azure ML write-back)::

    models:
      churn:
        azureml:
          write_back: true              # promotions, blocks and rollbacks become tags of the model version
          environments: [staging, prod] # only these environments (default: every environment)

See ``docs/aws.md`` (SageMaker lifecycle stages). Example::

    models:
      churn:
        sagemaker:
          stages: {Development: dev, Staging: staging, Production: prod}
          write_back: true              # promotions, blocks and rollbacks are written to ModelLifeCycle
          approval_status: false        # also write ModelApprovalStatus: Approved on a promotion
          superseded_status: Archived   # the StageStatus of a version that left the stage
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from modelpilot.policy.base import Strict

__all__ = ["APPROVED", "REJECTED", "AzureMlSync", "SageMakerSync"]

#: the SageMaker ``EntityName`` pattern that ``Stage`` and ``StageStatus`` follow (1-63 characters)
_ENTITY_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
#: the StageStatus that requests a promotion inbound and that a promotion writes back
APPROVED = "Approved"
#: the StageStatus a blocked promotion writes back
REJECTED = "Rejected"


def _entity_name(value: str, what: str) -> str:
    if not _ENTITY_NAME.match(value):
        raise ValueError(
            f"{what} {value!r} is not a SageMaker stage name: 1-63 letters, digits and hyphens, "
            "starting and ending with a letter or digit"
        )
    return value


class SageMakerSync(Strict):
    """How a model's SageMaker ``ModelLifeCycle`` stages map to ModelPilot environments."""

    stages: dict[str, str] = Field(
        min_length=1,
        description="SageMaker ModelLifeCycle Stage -> ModelPilot environment, e.g. {Production: prod}",
    )
    write_back: bool = Field(
        default=True, description="write promotions, blocks and rollbacks back to the package's ModelLifeCycle"
    )
    approval_status: bool = Field(
        default=False, description="also write ModelApprovalStatus: Approved when a version is promoted"
    )
    superseded_status: str = Field(
        default="Archived",
        description="the StageStatus of a version that left a stage (replaced or rolled back)",
    )

    @field_validator("stages")
    @classmethod
    def _stage_names(cls, stages: dict[str, str]) -> dict[str, str]:
        for stage in stages:
            _entity_name(stage, "stage")
        return stages

    @field_validator("superseded_status")
    @classmethod
    def _status_name(cls, status: str) -> str:
        _entity_name(status, "superseded_status")
        if status in {APPROVED, REJECTED}:
            raise ValueError(f"superseded_status must differ from {APPROVED} and {REJECTED}")
        return status

    @model_validator(mode="after")
    def _one_stage_per_environment(self) -> SageMakerSync:
        seen: dict[str, str] = {}
        for stage, environment in self.stages.items():
            if environment in seen:
                raise ValueError(
                    f"environment {environment!r} is mapped from both {seen[environment]!r} and {stage!r}; "
                    "map each environment from one stage (write-back needs one stage per environment)"
                )
            seen[environment] = stage
        return self

    def environment_of(self, stage: str) -> str | None:
        """Return the environment ``stage`` maps to, or None when it is not mapped."""
        return self.stages.get(stage)

    def stage_of(self, environment: str) -> str | None:
        """Return the stage ``environment`` is mapped from, or None."""
        return next((s for s, e in self.stages.items() if e == environment), None)


class AzureMlSync(Strict):
    """Whether a model's Azure ML versions get ModelPilot's decisions as tags (``modelpilot.<environment>``)."""

    write_back: bool = Field(
        default=True, description="write promotions, blocks and rollbacks as tags of the Azure ML model version"
    )
    environments: list[str] | None = Field(
        default=None, description="the environments written back (default: every environment)"
    )

    def writes(self, environment: str) -> bool:
        """True when a decision in ``environment`` is written back."""
        return self.write_back and (self.environments is None or environment in self.environments)
