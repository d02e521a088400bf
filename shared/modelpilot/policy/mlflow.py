"""The ``mlflow`` block of the policy: how MLflow's registry and ModelPilot's environments meet.

::

    mlflow:
      aliases: {staging: challenger, prod: champion}   # environment → MLflow alias, both ways
      approval_tag_prefix: "approve."                  # tag "approve.prod" = "alice@example.com"
      models: {"Churn Model": churn}                   # MLflow name → ModelPilot name (default: the same name)

* ``model_version.created`` registers the version (its artifacts copied into the artifact store with their
  digests, its run's metrics, params and lineage) when the MLflow model is known here (in ``models``, or named
  like a ModelPilot model when ``register_all`` is true).
* ``model_version_alias.created`` on one of the ``aliases`` asks ModelPilot to promote that version to the
  environment the alias stands for; the gates still decide.
* ``model_version_tag.set`` with a key ``<approval_tag_prefix><environment>`` records an approval by
  ``mlflow:<tag value>`` (see docs/mlflow.md for what that identity is worth).
* After every promotion, block or rollback, the aliases are set back to what ModelPilot holds and the gate
  report is written as tags under ``tag_prefix``.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from modelpilot.policy.base import Strict

__all__ = ["MLFLOW_ALIAS", "MlflowPolicy"]

#: MLflow alias names: letters, digits, '_' and '-', not "latest", not "v<number>" (MLflow's own rules)
MLFLOW_ALIAS = re.compile(r"^(?!latest$)(?!v\d+$)[A-Za-z0-9_-]{1,255}$")
_TAG_PREFIX = re.compile(r"^[A-Za-z0-9_./ -]{1,100}$")


class MlflowPolicy(Strict):
    """How ModelPilot follows, and writes back to, an MLflow model registry."""

    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="environment → MLflow alias: setting the alias requests a promotion; "
        "ModelPilot sets it after a promotion or rollback",
    )
    models: dict[str, str] = Field(
        default_factory=dict, description="MLflow registered model name → ModelPilot model name"
    )
    register_all: bool = Field(
        default=True,
        description="register every MLflow model whose name is a valid ModelPilot name, not only those in models",
    )
    approval_tag_prefix: str | None = Field(
        default=None,
        description="model-version tag '<prefix><environment>' = approver records an approval by mlflow:<approver>; "
        "unset: tags never approve",
    )
    tag_prefix: str = Field(default="modelpilot.", description="prefix of the tags ModelPilot writes on versions")
    max_artifact_bytes: int = Field(
        default=512 * 1024 * 1024, gt=0, description="largest single artifact file copied from MLflow"
    )
    max_artifacts: int = Field(default=1000, gt=0, description="most artifact files one model version may have")

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: dict[str, str]) -> dict[str, str]:
        for environment, alias in value.items():
            if not MLFLOW_ALIAS.match(alias):
                raise ValueError(
                    f"alias {alias!r} of {environment} is not a valid MLflow alias "
                    "(letters, digits, '_', '-'; not 'latest' or 'v<number>')"
                )
        if len(set(value.values())) != len(value):
            raise ValueError("each environment needs its own alias")
        return value

    @model_validator(mode="after")
    def _prefixes(self) -> MlflowPolicy:
        for name, prefix in (("tag_prefix", self.tag_prefix), ("approval_tag_prefix", self.approval_tag_prefix)):
            if prefix is not None and not _TAG_PREFIX.match(prefix):
                raise ValueError(f"{name} {prefix!r} may hold only letters, digits, '_', '.', '/', '-' and spaces")
        approval = self.approval_tag_prefix
        if approval is not None and (approval.startswith(self.tag_prefix) or self.tag_prefix.startswith(approval)):
            # the tags ModelPilot writes must never read as approvals
            raise ValueError(f"approval_tag_prefix {approval!r} overlaps tag_prefix {self.tag_prefix!r}")
        return self

    def environment_of(self, alias: str) -> str | None:
        """Return the environment ``alias`` stands for, or None when it is not one of ours."""
        return next((env for env, own in self.aliases.items() if own == alias), None)
