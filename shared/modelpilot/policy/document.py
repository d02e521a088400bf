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

import datetime
import math
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from modelpilot.exceptions import PolicyError, UnknownEnvironment, describe_validation
from modelpilot.policy.base import Strict
from modelpilot.policy.drift import DriftPolicy
from modelpilot.policy.gates import EnvironmentGates, MetricThreshold, RegressionRule
from modelpilot.policy.mlflow import MlflowPolicy
from modelpilot.policy.quality import AttributionPolicy, QualityPolicy
from modelpilot.policy.registries import AzureMlSync, SageMakerSync
from modelpilot.policy.roles import RoleGrant
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

#: environment and model names: they become parts of file paths, PromQL label values and HTML
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_NAME_RULE = "1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
#: a policy nested deeper than this, or with more values than this, is refused before it is validated
MAX_POLICY_DEPTH = 32
MAX_POLICY_NODES = 100_000
#: the largest integer a policy may hold (SQLite and DynamoDB store 64-bit integers)
MAX_POLICY_INT = 2**53


class ModelPolicy(Strict):
    """A model's policy (or the defaults for every model)."""

    environments: dict[str, EnvironmentGates] = Field(default_factory=dict)
    drift: DriftPolicy | None = None
    quality: QualityPolicy | None = None
    attribution: AttributionPolicy | None = None
    slos: list[SloSpec] = Field(default_factory=list)
    rollback: dict[str, RollbackPolicy] = Field(default_factory=dict, description="rollback policy per environment")
    sagemaker: SageMakerSync | None = Field(default=None, description="SageMaker lifecycle stages, both ways")
    azureml: AzureMlSync | None = Field(default=None, description="Azure ML model version tags written back")


class Policy(Strict):
    """The whole policy file."""

    version: Literal[1] = 1
    environments: list[str] = Field(default_factory=lambda: ["dev", "staging", "prod"], min_length=1)
    operators: list[str] = Field(
        default_factory=list,
        description="glob patterns of actors allowed to promote and roll back by hand; empty = anyone",
    )
    delegates: list[str] = Field(
        default_factory=list,
        description=(
            "identity patterns of principals (a release pipeline's role) trusted to act for the person they name "
            "with the CLI's --actor, e.g. 'github:carol'; anyone else's --actor is recorded as claimed:<name>"
        ),
    )
    roles: list[RoleGrant] | None = Field(
        default=None,
        description="roles (viewer, promoter, approver, admin) per model and environment; absent = no role checks",
    )
    defaults: ModelPolicy = Field(default_factory=ModelPolicy)
    models: dict[str, ModelPolicy] = Field(default_factory=dict)
    mlflow: MlflowPolicy | None = Field(default=None, description="the MLflow registry, both ways (docs/mlflow.md)")

    @field_validator("environments")
    @classmethod
    def _environment_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"environment {name[:70]!r} must be {_NAME_RULE}")
        return value

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, ModelPolicy]) -> dict[str, ModelPolicy]:
        for name in value:
            if not NAME_PATTERN.match(name):
                raise ValueError(f"model {name[:70]!r} must be {_NAME_RULE}")
        return value

    @model_validator(mode="after")
    def _known_environments(self) -> Policy:
        if len(set(self.environments)) != len(self.environments):
            raise ValueError("environments must be unique")
        for owner, block in [("defaults", self.defaults), *((f"models.{k}", v) for k, v in self.models.items())]:
            named = list(block.environments) + list(block.rollback) + [s.environment for s in block.slos]
            named += list(block.sagemaker.stages.values()) if block.sagemaker else []
            named += list(block.azureml.environments or []) if block.azureml else []
            for env in named:
                if env not in self.environments:
                    raise ValueError(f"{owner} names environment {env!r}, which is not in {self.environments}")
        every_slo = [*self.defaults.slos, *(s for m in self.models.values() for s in m.slos)]
        _check_canary_slos("defaults", self.defaults, every_slo)
        for name, own in self.models.items():
            _check_canary_slos(f"models.{name}", own, self.model_policy(name).slos)
        for i, grant in enumerate(self.roles or []):
            for env in grant.environments:
                if env not in self.environments:
                    raise ValueError(f"roles[{i}] names environment {env!r}, which is not in {self.environments}")
        if self.roles is not None and self.operators:
            raise ValueError("give either operators or roles, not both: with roles, promoters and admins operate")
        for env in self.mlflow.aliases if self.mlflow else ():
            if env not in self.environments:
                raise ValueError(f"mlflow.aliases names environment {env!r}, which is not in {self.environments}")
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
            azureml=own.azureml if own.azureml is not None else self.defaults.azureml,
        )


def _check_canary_slos(owner: str, block: ModelPolicy, slos: list[SloSpec]) -> None:
    """A canary metric's ``slo`` must name a ratio or threshold SLO of that environment among ``slos``.

    For the defaults, ``slos`` are every SLO of the file (a default canary may name an SLO each model
    defines itself); a model without it is refused when its canary starts.
    """
    for env, gates in block.environments.items():
        for metric in gates.canary.metrics() if gates.canary else ():
            if metric.slo is None:
                continue
            slo = next((s for s in slos if s.name == metric.slo and s.environment == env), None)
            if slo is None:
                raise ValueError(
                    f"{owner}.environments.{env}.canary metric {metric.name} names slo {metric.slo!r}, "
                    f"which is not an SLO of {env} there"
                )
            if slo.sli.kind == "quality" or slo.sli.source == "quality":
                raise ValueError(
                    f"{owner}.environments.{env}.canary metric {metric.name}: slo {metric.slo!r} is a quality SLI, "
                    "which a canary cannot compare per version; use a ratio or threshold SLO"
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
    _check_plain(data, source)
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


def _check_plain(data: Any, source: str) -> None:
    """Refuse what YAML can hold but a policy never needs: dates, binary, huge or non-finite numbers, deep nesting.

    Iterative (no recursion) and bounded in the number of values visited, so neither deep
    nesting nor an alias bomb can exhaust the stack or the CPU.
    """
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    visited = 0
    while stack:
        value, where, depth = stack.pop()
        visited += 1
        at = where or "<root>"
        if visited > MAX_POLICY_NODES:
            raise PolicyError(f"{source}: the policy holds more than {MAX_POLICY_NODES} values", source=source)
        if depth > MAX_POLICY_DEPTH:
            raise PolicyError(
                f"{source}: the policy is nested deeper than {MAX_POLICY_DEPTH} levels at {at}", source=source, field=at
            )
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str | int) or isinstance(key, bool):
                    raise PolicyError(
                        f"{source}: invalid policy at {at}: keys must be strings", source=source, field=at
                    )
                if isinstance(key, str):
                    _check_utf8(key, at, source)
                stack.append((item, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}.{i}" if where else str(i), depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            _check_utf8(value, at, source)
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_POLICY_INT:
                raise PolicyError(
                    f"{source}: invalid policy at {at}: numbers must be below 2**53", source=source, field=at
                )
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise PolicyError(f"{source}: invalid policy at {at}: numbers must be finite", source=source, field=at)
        elif isinstance(value, datetime.date):
            raise PolicyError(
                f"{source}: invalid policy at {at}: a date is not allowed here (quote it if it is text)",
                source=source,
                field=at,
            )
        else:
            raise PolicyError(
                f"{source}: invalid policy at {at}: {type(value).__name__} values are not allowed",
                source=source,
                field=at,
            )


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
    """Parse YAML (or JSON) policy text; raise ``PolicyError`` when invalid or empty.

    An empty document (no text, only whitespace or comments) is an error, never the default
    policy: a policy file that lost its content must not open every gate.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}", source=source) from None
    except RecursionError:
        raise PolicyError(f"{source}: the policy is nested too deeply to read", source=source) from None
    if data is None:
        raise PolicyError(
            f"{source}: the policy is empty; write the policy (at least `environments: [...]`) or remove the file "
            "to use the documented default",
            source=source,
        )
    try:
        return parse_policy(data, source=source)
    except PolicyError as exc:
        line = _line_of(text, str(exc.details.get("field", "")))
        if line is None:
            raise
        raise PolicyError(f"{exc.message} (line {line})", **{**exc.details, "line": line}) from None


def _check_utf8(text: str, at: str, source: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PolicyError(
            f"{source}: invalid policy at {at}: text holds a lone surrogate (\\ud800-\\udfff), which is not UTF-8",
            source=source,
            field=at,
        ) from None


def _line_of(text: str, where: str) -> int | None:
    """Return the 1-based line of the value at the dotted path ``where`` in the YAML ``text`` (None: unknown)."""
    if not where or where == "<root>":
        return None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    line = None
    for part in where.split("."):
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            break
    return line


def policy_schema() -> dict[str, Any]:
    """Return the JSON Schema of the policy file."""
    schema = Policy.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ModelPilot policy (modelpilot.yaml)"
    return schema
