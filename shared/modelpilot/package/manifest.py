"""The model package manifest, ``modelpilot.json``: schema, parsing and verification.

A package is a folder (or an ``s3://`` / ``az://`` prefix) holding the artifact
files and this manifest::

    {
      "schema_version": 1,
      "name": "churn",
      "framework": "numpy-logreg",
      "metrics": {"auc": 0.91, "latency_p95_ms": 12.5},
      "lineage": {"run_id": "run-42", "code_revision": "3f2a9c1", "training_data_uri": "s3://data/churn/2026-11"},
      "features": [
        {"name": "tenure_months", "type": "numeric", "minimum": 0, "maximum": 600},
        {"name": "plan", "type": "categorical", "allowed_values": ["basic", "pro"]}
      ],
      "reference_data_uri": "reference.csv",
      "artifacts": [{"path": "model.npz", "sha256": "<64 hex>", "size": 1234}]
    }

``modelpilot manifest schema`` prints the JSON Schema.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelpilot.domain.model import ArtifactFile, FeatureSpec, Lineage, Manifest, canonical_json, sha256_hex
from modelpilot.exceptions import (
    ArtifactMissing,
    DigestMismatch,
    ManifestInvalidJSON,
    ManifestMissing,
    ManifestSchemaError,
    SizeMismatch,
    describe_validation,
)

if TYPE_CHECKING:
    from modelpilot.ports import ArtifactStore

__all__ = ["MANIFEST_NAME", "load_package", "manifest_digest", "manifest_schema", "parse_manifest"]

MANIFEST_NAME = "modelpilot.json"
MAX_MANIFEST_BYTES = 1024 * 1024
#: limits that keep a path usable on every store (POSIX NAME_MAX, S3 and Blob key lengths)
MAX_PATH_CHARS = 1024
MAX_SEGMENT_BYTES = 255
#: the largest artifact size: SQLite and DynamoDB hold 64-bit integers, JSON numbers are exact to 2**53
MAX_ARTIFACT_SIZE = 2**53
#: how deep a manifest's JSON may nest (the schema needs 4 levels)
MAX_DEPTH = 16
#: the URI schemes a reference data set may live under besides the package itself
REFERENCE_SCHEMES = ("s3", "az")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def relative_path(value: str) -> str:
    """Return ``value`` normalised if it is a usable path inside the package; else ``ValueError`` saying why."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, newline, ...)")
    if len(value) > MAX_PATH_CHARS:
        raise ValueError(f"must be at most {MAX_PATH_CHARS} characters")
    norm = posixpath.normpath(value)
    if value.startswith("/") or norm.startswith("..") or "\\" in value or norm in {".", MANIFEST_NAME}:
        raise ValueError("must be a relative path inside the package (no '..', no leading '/')")
    if any(len(part.encode("utf-8")) > MAX_SEGMENT_BYTES for part in norm.split("/")):
        raise ValueError(f"each part of the path must be at most {MAX_SEGMENT_BYTES} bytes")
    return norm


class _Artifact(_Strict):
    path: str = Field(min_length=1, description="path relative to the package, '/' separated")
    sha256: str = Field(description="lower-case hex sha256 of the file")
    size: int = Field(ge=0, le=MAX_ARTIFACT_SIZE, description="size in bytes")

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not _SHA256.match(value):
            raise ValueError("must be 64 lower-case hex characters")
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return relative_path(value)


class _Feature(_Strict):
    name: str = Field(min_length=1)
    type: Literal["numeric", "categorical"]
    minimum: float | None = None
    maximum: float | None = None
    allowed_values: list[str] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _Feature:
        if self.type == "categorical" and (self.minimum is not None or self.maximum is not None):
            raise ValueError("bounds (minimum/maximum) apply to numeric features only")
        if self.type == "numeric" and self.allowed_values is not None:
            raise ValueError("allowed_values applies to categorical features only")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is greater than maximum")
        return self


class _Lineage(_Strict):
    run_id: str | None = Field(default=None, description="the training or CI run that produced the model")
    code_revision: str | None = Field(default=None, description="the commit the model was built from")
    training_data_uri: str | None = None
    repository: str | None = Field(default=None, description="the repository the model was built from")
    run_url: str | None = Field(default=None, description="the CI run that built the package")
    built_by: str | None = Field(default=None, description="who started that CI run, as the CI names them")


class ManifestDocument(_Strict):
    """The JSON document ``modelpilot.json``."""

    schema_version: Literal[1] = 1
    name: str = Field(description="model name: lower-case letters, digits, '.', '_', '-'")
    framework: str = Field(min_length=1)
    description: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict, description="evaluation metrics, name → number")
    lineage: _Lineage = Field(default_factory=_Lineage)
    features: list[_Feature] = Field(default_factory=list)
    reference_data_uri: str | None = Field(
        default=None, description="reference data for drift: a URI, or a path relative to the package"
    )
    artifacts: list[_Artifact] = Field(min_length=1)
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "must be 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return value

    @field_validator("reference_data_uri")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if sep and scheme in REFERENCE_SCHEMES and rest and not _CONTROL.search(value):
            return value
        if sep or ":" in value.split("/", 1)[0]:
            raise ValueError(
                f"must be a path inside the package or an {' or '.join(s + '://' for s in REFERENCE_SCHEMES)} URI"
            )
        return relative_path(value)

    @field_validator("metrics")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if not math.isfinite(number):
                raise ValueError(f"metric {key!r} must be a finite number")
        return value

    @model_validator(mode="after")
    def _unique(self) -> ManifestDocument:
        paths = [a.path for a in self.artifacts]
        if len(set(paths)) != len(paths):
            raise ValueError("artifact paths must be unique")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names must be unique")
        return self


def manifest_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``modelpilot.json``."""
    schema = ManifestDocument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "ModelPilot model package manifest (modelpilot.json)"
    return schema


def parse_manifest(raw: bytes, *, source: str = MANIFEST_NAME) -> Manifest:
    """Parse and validate manifest bytes; raise a typed ``PackageError`` naming the problem."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestInvalidJSON(
            f"{source} is {len(raw)} bytes, more than the {MAX_MANIFEST_BYTES} allowed", source=source
        )
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestInvalidJSON(f"{source} is not valid JSON: {exc}", source=source) from None
    except RecursionError:
        raise ManifestInvalidJSON(f"{source} is nested too deeply to be a manifest", source=source) from None
    if not isinstance(data, dict):
        raise ManifestSchemaError(f"{source}: the manifest must be a JSON object", field="<root>", source=source)
    _check_text(data, source)
    try:
        doc = ManifestDocument.model_validate(data)
    except ValidationError as exc:
        where, message, errors = describe_validation(exc)
        raise ManifestSchemaError(
            f"{source}: invalid field {where}: {message}",
            field=where,
            source=source,
            errors=errors,
        ) from None
    return Manifest(
        name=doc.name,
        framework=doc.framework,
        metrics=dict(doc.metrics),
        lineage=Lineage(**doc.lineage.model_dump()),
        features=tuple(
            FeatureSpec(
                name=f.name,
                type=f.type,
                minimum=f.minimum,
                maximum=f.maximum,
                allowed_values=tuple(f.allowed_values) if f.allowed_values is not None else None,
            )
            for f in doc.features
        ),
        artifacts=tuple(ArtifactFile(a.path, a.sha256, a.size) for a in doc.artifacts),
        reference_data_uri=doc.reference_data_uri,
        description=doc.description,
        tags=dict(doc.tags),
    )


def _check_text(data: Any, source: str) -> None:
    """Refuse JSON that parses but cannot be stored: lone surrogates (not UTF-8) and deep nesting. Iterative."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        at = where or "<root>"
        if depth > MAX_DEPTH:
            raise ManifestSchemaError(
                f"{source}: invalid field {at}: nested deeper than {MAX_DEPTH} levels", field=at, source=source
            )
        if isinstance(value, dict):
            for key, item in value.items():
                _utf8(key, at, source)
                stack.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}.{i}" if where else str(i), depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            _utf8(value, at, source)


def _utf8(text: str, where: str, source: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestSchemaError(
            f"{source}: invalid field {where}: text holds a lone surrogate (\\ud800-\\udfff), which is not UTF-8",
            field=where,
            source=source,
        ) from None


def manifest_digest(manifest: Manifest) -> str:
    """Return the sha256 of the manifest's canonical JSON (the registration idempotency key)."""
    return sha256_hex(canonical_json(manifest.to_dict()))


def package_root(uri: str) -> str:
    """Return the package prefix for a package URI or a URI ending in ``modelpilot.json``."""
    stripped = uri.rstrip("/")
    if stripped.endswith("/" + MANIFEST_NAME) or stripped == MANIFEST_NAME:
        return stripped[: -len(MANIFEST_NAME)].rstrip("/") or "."
    return stripped


def load_package(store: ArtifactStore, package_uri: str) -> tuple[str, Manifest]:
    """Read, validate and verify the package at ``package_uri``.

    Returns ``(package_root, manifest)``. Every artifact's size and sha256 are
    checked by streaming it; the first problem raises ``ManifestMissing``,
    ``ManifestInvalidJSON``, ``ManifestSchemaError``, ``ArtifactMissing``,
    ``SizeMismatch`` or ``DigestMismatch``. Nothing is written.
    """
    root = package_root(package_uri)
    manifest_uri = store.join(root, MANIFEST_NAME)
    try:
        raw = store.read_bytes(manifest_uri, max_bytes=MAX_MANIFEST_BYTES)
    except ArtifactMissing:
        raise ManifestMissing(f"no {MANIFEST_NAME} in package {root}", package=root) from None
    manifest = parse_manifest(raw, source=manifest_uri)
    for artifact in manifest.artifacts:
        uri = store.join(root, artifact.path)
        try:
            info = store.stat(uri)
        except ArtifactMissing:
            raise ArtifactMissing(
                f"artifact {artifact.path} listed in {MANIFEST_NAME} is missing from {root}", file=artifact.path
            ) from None
        if info.size != artifact.size:
            raise SizeMismatch(
                f"artifact {artifact.path}: size {info.size} bytes, manifest says {artifact.size}",
                file=artifact.path,
                expected=artifact.size,
                actual=info.size,
            )
        digest, size = store.sha256(uri)
        if size != artifact.size:
            raise SizeMismatch(
                f"artifact {artifact.path}: read {size} bytes, manifest says {artifact.size}",
                file=artifact.path,
                expected=artifact.size,
                actual=size,
            )
        if digest != artifact.sha256:
            raise DigestMismatch(
                f"artifact {artifact.path}: sha256 {digest}, manifest says {artifact.sha256}",
                file=artifact.path,
                expected=artifact.sha256,
                actual=digest,
            )
    return root, manifest
