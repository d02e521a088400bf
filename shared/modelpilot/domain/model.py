"""Registry entities: model versions, aliases, approvals, monitor status.

Plain frozen dataclasses with no I/O. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "Alias",
    "AliasChange",
    "Approval",
    "ArtifactFile",
    "FeatureSpec",
    "Lineage",
    "Manifest",
    "ModelVersion",
    "MonitorKind",
    "MonitorState",
    "MonitorStatus",
    "VersionStatus",
    "canonical_json",
    "sha256_hex",
    "utcnow",
]

FeatureType = Literal["numeric", "categorical"]
VersionStatus = Literal["registered", "rejected", "pending_approval"]
MonitorKind = Literal["drift", "slo", "quality"]
MonitorState = Literal["ok", "alert"]


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` deterministically (sorted keys, no spaces, UTF-8)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sha256_hex(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ArtifactFile:
    """One artifact file of a package, addressed by its sha256 digest."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class FeatureSpec:
    """One input feature of the model's schema."""

    name: str
    type: FeatureType
    minimum: float | None = None
    maximum: float | None = None
    allowed_values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Lineage:
    """Where the model came from.

    ``repository``, ``run_url`` and ``built_by`` (the CI run that built the package)
    were added later: they are left out of :meth:`Manifest.to_dict` while unset, so
    the digest of a manifest that does not use them is what it always was.
    """

    run_id: str | None = None
    code_revision: str | None = None
    training_data_uri: str | None = None
    repository: str | None = None
    run_url: str | None = None
    built_by: str | None = None


#: lineage fields that appear in the canonical manifest only when set (digest stability)
_OPTIONAL_LINEAGE = ("repository", "run_url", "built_by")


@dataclass(frozen=True)
class Manifest:
    """The validated content of ``modelpilot.json``."""

    name: str
    framework: str
    metrics: dict[str, float]
    lineage: Lineage
    features: tuple[FeatureSpec, ...]
    artifacts: tuple[ArtifactFile, ...]
    reference_data_uri: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as the JSON document it was read from (normalised)."""
        data = asdict(self)
        for name in _OPTIONAL_LINEAGE:
            if data["lineage"][name] is None:
                del data["lineage"][name]
        for feat in data["features"]:
            if feat["allowed_values"] is not None:
                feat["allowed_values"] = list(feat["allowed_values"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Rebuild a manifest stored by :meth:`to_dict` (trusted input, no validation)."""
        return cls(
            name=data["name"],
            framework=data["framework"],
            metrics={k: float(v) for k, v in data.get("metrics", {}).items()},
            lineage=Lineage(**(data.get("lineage") or {})),
            features=tuple(
                FeatureSpec(
                    name=f["name"],
                    type=f["type"],
                    minimum=f.get("minimum"),
                    maximum=f.get("maximum"),
                    allowed_values=tuple(f["allowed_values"]) if f.get("allowed_values") is not None else None,
                )
                for f in data.get("features", [])
            ),
            artifacts=tuple(ArtifactFile(**a) for a in data.get("artifacts", [])),
            reference_data_uri=data.get("reference_data_uri"),
            description=data.get("description"),
            tags=dict(data.get("tags") or {}),
        )


@dataclass(frozen=True)
class ModelVersion:
    """A registered version of a model.

    ``manifest_digest`` is the sha256 of the manifest's canonical JSON: registering
    the same package again finds the same digest and returns this version.
    """

    model: str
    version: int
    manifest_digest: str
    manifest: Manifest
    package_uri: str
    registered_by: str
    registered_at: datetime
    status: VersionStatus = "registered"
    source: str = "upload"
    external_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view of the version."""
        return {
            "model": self.model,
            "version": self.version,
            "manifest_digest": self.manifest_digest,
            "package_uri": self.package_uri,
            "registered_by": self.registered_by,
            "registered_at": self.registered_at.isoformat(),
            "status": self.status,
            "source": self.source,
            "external_id": self.external_id,
            "metrics": dict(self.manifest.metrics),
            "framework": self.manifest.framework,
        }


@dataclass(frozen=True)
class Alias:
    """Where an environment's alias points now. ``revision`` grows by one per move."""

    model: str
    environment: str
    version: int
    revision: int
    updated_at: datetime
    updated_by: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view of the alias."""
        return {
            "model": self.model,
            "environment": self.environment,
            "version": self.version,
            "revision": self.revision,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias: the unit of alias history.

    ``revision`` is the alias revision *after* the move (the first move is 1).
    ``healthy`` is False once a monitor reported the version unhealthy while it was
    live (the rollback guard never goes back onto such a version).
    """

    model: str
    environment: str
    revision: int
    from_version: int | None
    to_version: int
    action: Literal["promote", "rollback"]
    actor: str
    reason: str
    at: datetime
    trigger: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view of the change."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


@dataclass(frozen=True)
class Approval:
    """An approval of a version for an environment by one person."""

    model: str
    version: int
    environment: str
    approver: str
    at: datetime
    comment: str = ""


@dataclass(frozen=True)
class MonitorStatus:
    """The last verdict a monitor (drift or SLO) reported for a model in an environment.

    ``state`` is ``"ok"`` or ``"alert"``; ``version`` is the version that was live
    when the monitor looked. Promotion gates read these records.
    """

    model: str
    environment: str
    kind: MonitorKind
    state: MonitorState
    version: int | None
    updated_at: datetime
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view of the status."""
        data = asdict(self)
        data["updated_at"] = self.updated_at.isoformat()
        return data
