"""The exception tree of ModelPilot.

Every error a user can cause or a platform can suffer is typed, so handlers can
decide whether a retry can help::

    ModelPilotError
    ├── InvalidInput                    permanent: the request or payload is wrong, retrying never helps
    │   ├── InvalidEvent                a trigger payload does not have the expected shape
    │   ├── PolicyError                 the policy file is missing or invalid
    │   ├── PackageError                a model package cannot be registered
    │   │   ├── ManifestMissing         no modelpilot.json where it was expected
    │   │   ├── ManifestInvalidJSON     modelpilot.json is not JSON
    │   │   ├── ManifestSchemaError     modelpilot.json violates the schema (names the field)
    │   │   ├── ArtifactMissing         a listed artifact file does not exist
    │   │   ├── DigestMismatch          a listed artifact's sha256 differs (names the file)
    │   │   └── SizeMismatch            a listed artifact's size differs (names the file)
    │   ├── DataError                   drift / telemetry input cannot be read
    │   ├── PayloadTooLarge             a request, or a value in it, is larger than accepted (HTTP 413)
    │   └── UnknownEnvironment          the environment is not in the policy
    ├── NotFound                        permanent: the thing named does not exist
    │   ├── UnknownModel
    │   ├── UnknownVersion
    │   └── UnknownReport
    ├── NotAuthorized                   permanent: the actor may not do this (e.g. four-eyes)
    ├── Conflict                        the state moved under us
    │   ├── ConcurrencyConflict         a compare-and-set lost a race (retryable)
    │   └── AlreadyExists               a write-once object exists with other content (permanent)
    ├── AuditChainBroken                the audit chain does not verify
    │   └── StoreCorrupt                a local database cannot be read (corrupt or truncated)
    └── TransientError                  retryable: a dependency is unavailable or throttling

``retryable`` tells an entrypoint whether to let the platform retry (raise) or to
drop the event as poison (log and return).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "AlreadyExists",
    "ArtifactMissing",
    "AuditChainBroken",
    "ConcurrencyConflict",
    "Conflict",
    "DataError",
    "DigestMismatch",
    "InvalidEvent",
    "InvalidInput",
    "ManifestInvalidJSON",
    "ManifestMissing",
    "ManifestSchemaError",
    "ModelPilotError",
    "NotAuthorized",
    "NotFound",
    "PackageError",
    "PayloadTooLarge",
    "PolicyError",
    "SizeMismatch",
    "StoreCorrupt",
    "TransientError",
    "UnknownEnvironment",
    "UnknownModel",
    "UnknownReport",
    "UnknownVersion",
    "describe_validation",
]


class ModelPilotError(Exception):
    """Base class of every error ModelPilot raises on purpose.

    Attributes
    ----------
    code:
        A stable, machine-readable error code (``"digest_mismatch"``) used in
        JSON output and HTTP replies.
    retryable:
        True when trying the same operation again may succeed.
    """

    code = "error"
    retryable = False
    http_status = 500

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-friendly description of the error."""
        return {"error": self.code, "message": self.message, **{k: _plain(v) for k, v in self.details.items()}}


def _plain(value: object) -> object:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


class InvalidInput(ModelPilotError):
    """The request or payload is wrong; retrying the same input never helps."""

    code = "invalid_input"
    http_status = 400


class InvalidEvent(InvalidInput):
    """A trigger payload does not have the shape its source documents."""

    code = "invalid_event"


class PolicyError(InvalidInput):
    """The policy file is missing, unreadable or invalid."""

    code = "invalid_policy"


class PackageError(InvalidInput):
    """A model package cannot be registered."""

    code = "invalid_package"
    http_status = 422


class ManifestMissing(PackageError):
    """The package has no ``modelpilot.json``."""

    code = "manifest_missing"


class ManifestInvalidJSON(PackageError):
    """``modelpilot.json`` is not valid JSON."""

    code = "manifest_invalid_json"


class ManifestSchemaError(PackageError):
    """``modelpilot.json`` violates the manifest schema; ``field`` names where."""

    code = "manifest_schema"

    def __init__(self, message: str, *, field: str, **details: object) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class ArtifactMissing(PackageError):
    """An artifact listed in the manifest does not exist."""

    code = "artifact_missing"


class DigestMismatch(PackageError):
    """An artifact's sha256 is not the one the manifest lists."""

    code = "digest_mismatch"


class SizeMismatch(PackageError):
    """An artifact's size is not the one the manifest lists."""

    code = "size_mismatch"


class DataError(InvalidInput):
    """Monitoring input (capture data, telemetry, profiles) cannot be read."""

    code = "invalid_data"


class PayloadTooLarge(InvalidInput):
    """A request body, or a value in it, is larger than ModelPilot or the store behind it accepts."""

    code = "payload_too_large"
    http_status = 413


class UnknownEnvironment(InvalidInput):
    """The environment is not one of the policy's environments."""

    code = "unknown_environment"


class NotFound(ModelPilotError):
    """The thing named does not exist."""

    code = "not_found"
    http_status = 404


class UnknownModel(NotFound):
    """No model of that name is registered."""

    code = "unknown_model"


class UnknownVersion(NotFound):
    """The model has no such version."""

    code = "unknown_version"


class UnknownReport(NotFound):
    """No drift report with that id exists."""

    code = "unknown_report"


class NotAuthorized(ModelPilotError):
    """The actor may not perform this action."""

    code = "not_authorized"
    http_status = 403


class Conflict(ModelPilotError):
    """The state changed under the operation."""

    code = "conflict"
    http_status = 409


class ConcurrencyConflict(Conflict):
    """A compare-and-set lost a race; re-read and try again."""

    code = "concurrency_conflict"
    retryable = True


class AlreadyExists(Conflict):
    """A write-once object already exists with different content."""

    code = "already_exists"


class AuditChainBroken(ModelPilotError):
    """The audit hash chain does not verify."""

    code = "audit_chain_broken"


class StoreCorrupt(AuditChainBroken):
    """A database of the local backend cannot be read (a corrupt or truncated file).

    Nothing it holds can be trusted, so it counts as a broken audit (CLI exit 7).
    """

    code = "store_corrupt"


class TransientError(ModelPilotError):
    """A dependency is unavailable or throttling; retrying may succeed."""

    code = "transient"
    retryable = True
    http_status = 503


def describe_validation(exc: ValidationError, *, root: str = "<root>", limit: int = 10) -> tuple[str, str, list[str]]:
    """Return ``(field path of the first error, its message, "path: message" for up to ``limit`` errors)``.

    Policy, manifest, telemetry and event errors all name the field this way.
    """
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or root
    listed = [f"{'.'.join(str(p) for p in e['loc']) or root}: {e['msg']}" for e in errors[:limit]]
    return where, str(first["msg"]), listed
