"""What the MLflow handlers share: the client, the policy block, and the mapping of names and versions."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from modelpilot.exceptions import InvalidInput
from modelpilot.policy.mlflow import MlflowPolicy

if TYPE_CHECKING:
    from modelpilot.domain.model import ModelVersion
    from modelpilot.ports import MlflowRegistry
    from modelpilot.service.messagebus import Services

__all__ = ["ACTOR", "SOURCE", "client", "external_id", "mlflow_ref", "model_name", "settings"]

#: the ``source`` of versions registered from MLflow
SOURCE = "mlflow"
#: the actor of everything MLflow's webhooks ask for
ACTOR = "system:mlflow"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def client(svc: Services) -> MlflowRegistry:
    """Return the MLflow registry; raise ``InvalidInput`` when none is configured."""
    if svc.mlflow is None:
        raise InvalidInput("no MLflow server is configured: set MODELPILOT_MLFLOW_TRACKING_URI")
    return svc.mlflow


def settings(svc: Services) -> MlflowPolicy:
    """Return the policy's ``mlflow`` block (its defaults when the policy has none)."""
    return svc.policy.mlflow or MlflowPolicy()


def model_name(policy: MlflowPolicy, mlflow_model: str) -> str | None:
    """Return the ModelPilot model an MLflow registered model maps to, or None when it is not followed."""
    if mlflow_model in policy.models:
        return policy.models[mlflow_model]
    if policy.register_all and _NAME.match(mlflow_model):
        return mlflow_model
    return None


def external_id(mlflow_model: str, mlflow_version: str) -> str:
    """Return the ``external_id`` of a version registered from MLflow: ``<registered model>/<version>``."""
    return f"{mlflow_model}/{mlflow_version}"


def mlflow_ref(version: ModelVersion) -> tuple[str, str] | None:
    """Return ``(registered model, version)`` in MLflow of a ModelPilot version, or None when it is not MLflow's."""
    if version.source != SOURCE or not version.external_id or "/" not in version.external_id:
        return None
    name, _, number = version.external_id.rpartition("/")
    return name, number
