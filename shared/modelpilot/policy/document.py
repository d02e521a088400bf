"""The policy file (``modelpilot.yaml``): environments, promotion gates, monitoring.

Validated with pydantic at load time; ``modelpilot policy schema`` prints the JSON
Schema and ``modelpilot policy validate FILE`` checks a file. A model's policy
is the ``defaults`` block with the model's own block laid over it, field by
field, per environment::

    version: 1
    environments: [dev, staging, prod]
    defaults:
      environments:
        staging:
          thresholds: ["auc >= 0.80", "latency_p95_ms <= 50"]
          no_regression:
            - {metric: auc, greater_is_better: true, min_absolute_change: -0.005}
          soak: 1h
        prod:
          approvals: 1
          require_no_drift_alert: true
          require_slo_healthy: true
    models:
      churn:
        environments:
          prod: {approvals: 2}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from modelpilot.exceptions import PolicyError, UnknownEnvironment, describe_validation
from modelpilot.policy.base import Strict
from modelpilot.policy.drift import DriftPolicy
from modelpilot.policy.gates import EnvironmentGates, MetricThreshold, RegressionRule
from modelpilot.policy.quality import AttributionPolicy, QualityPolicy
from modelpilot.policy.registries import SageMakerSync
from modelpilot.policy.slo import RollbackPolicy, SloSpec

__all__ = [
    "EnvironmentGates",
    "MetricThreshold",
    "ModelPolicy",
    "Policy",
    "RegressionRule",
    "default_policy",
    "load_policy",
    "parse_policy",
    "policy_schema",
]


class ModelPolicy(Strict):
    """A model's policy (or the defaults for every model)."""

    environments: dict[str, EnvironmentGates] = Field(default_factory=dict)
    drift: DriftPolicy | None = None
    quality: QualityPolicy | None = None
    attribution: AttributionPolicy | None = None
    slos: list[SloSpec] = Field(default_factory=list)
    rollback: dict[str, RollbackPolicy] = Field(default_factory=dict, description="rollback policy per environment")
    sagemaker: SageMakerSync | None = Field(default=None, description="SageMaker lifecycle stages, both ways")


class Policy(Strict):
    """The whole policy file."""

    version: Literal[1] = 1
    environments: list[str] = Field(default_factory=lambda: ["dev", "staging", "prod"], min_length=1)
    operators: list[str] = Field(
        default_factory=list,
        description="glob patterns of actors allowed to promote and roll back by hand; empty = anyone",
    )
    defaults: ModelPolicy = Field(default_factory=ModelPolicy)
    models: dict[str, ModelPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_environments(self) -> Policy:
        if len(set(self.environments)) != len(self.environments):
            raise ValueError("environments must be unique")
        for owner, block in [("defaults", self.defaults), *((f"models.{k}", v) for k, v in self.models.items())]:
            named = list(block.environments) + list(block.rollback) + [s.environment for s in block.slos]
            named += list(block.sagemaker.stages.values()) if block.sagemaker else []
            for env in named:
                if env not in self.environments:
                    raise ValueError(f"{owner} names environment {env!r}, which is not in {self.environments}")
        return self

    # -- lookups -------------------------------------------------------------------
    def check_environment(self, environment: str) -> None:
        """Raise ``UnknownEnvironment`` unless ``environment`` is in the policy."""
        if environment not in self.environments:
            raise UnknownEnvironment(
                f"unknown environment {environment!r}; the policy defines {', '.join(self.environments)}",
                environment=environment,
            )

    def previous_environment(self, environment: str) -> str | None:
        """Return the environment before ``environment`` in the promotion order."""
        self.check_environment(environment)
        index = self.environments.index(environment)
        return self.environments[index - 1] if index else None

    def gates_for(self, model: str, environment: str) -> EnvironmentGates:
        """Return the gates for entering ``environment``: defaults overlaid with the model's own."""
        self.check_environment(environment)
        base = self.defaults.environments.get(environment, EnvironmentGates())
        override = self.models.get(model)
        if override is None or environment not in override.environments:
            return base
        own = override.environments[environment]
        merged = base.model_dump()
        merged.update({name: getattr(own, name) for name in own.model_fields_set})
        return EnvironmentGates.model_validate(merged)

    def model_policy(self, model: str) -> ModelPolicy:
        """Return the model's block laid over the defaults (non-environment fields)."""
        own = self.models.get(model)
        if own is None:
            return self.defaults
        return ModelPolicy(
            environments=self.defaults.environments,
            drift=own.drift if own.drift is not None else self.defaults.drift,
            quality=own.quality if own.quality is not None else self.defaults.quality,
            attribution=own.attribution if own.attribution is not None else self.defaults.attribution,
            slos=own.slos if "slos" in own.model_fields_set else self.defaults.slos,
            rollback={**self.defaults.rollback, **own.rollback},
            sagemaker=own.sagemaker if own.sagemaker is not None else self.defaults.sagemaker,
        )


def default_policy() -> Policy:
    """Return the policy used when no file is given: three environments, no gates."""
    return Policy()


def parse_policy(data: Any, *, source: str = "<policy>") -> Policy:
    """Validate a parsed policy document; raise ``PolicyError`` naming the field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping at the top level", source=source)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        where, message, errors = describe_validation(exc)
        raise PolicyError(
            f"{source}: invalid policy at {where}: {message}",
            source=source,
            field=where,
            errors=errors,
        ) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; raise ``PolicyError`` when missing or invalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"policy file {path} does not exist", source=str(path)) from None
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror}", source=str(path)) from None
    return load_policy_text(text, source=str(path))


def load_policy_text(text: str, *, source: str = "<policy>") -> Policy:
    """Parse YAML (or JSON) policy text; raise ``PolicyError`` when invalid."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}", source=source) from None
    return parse_policy(data, source=source)


def policy_schema() -> dict[str, Any]:
    """Return the JSON Schema of the policy file."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ModelPilot policy (modelpilot.yaml)"
    return schema
