"""The abstract interfaces (ports) the service layer needs.

Adapters in ``modelpilot.adapters.<backend>`` implement them; ``modelpilot.testing``
ships in-memory fakes. One contract suite per port (``tests/contract``) runs
against every implementation.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from datetime import datetime
    from pathlib import Path

    from modelpilot.domain.audit import AuditEntry, AuditHead, AuditRecord
    from modelpilot.domain.canary import Canary, TrafficSplit
    from modelpilot.domain.events import Event
    from modelpilot.domain.model import (
        Alias,
        AliasChange,
        Approval,
        Manifest,
        ModelVersion,
        MonitorKind,
        MonitorStatus,
        VersionStatus,
    )
    from modelpilot.exceptions import ConcurrencyConflict

__all__ = [
    "AZUREML_PREFIX",
    "AZUREML_STATUSES",
    "Adapters",
    "AlarmTags",
    "ArtifactStore",
    "CanarySave",
    "EventCounts",
    "EventPublisher",
    "FanOutStarter",
    "IdempotencyStore",
    "LifecycleSync",
    "LifecycleUpdate",
    "MetricsSource",
    "MlflowFile",
    "MlflowModelVersion",
    "MlflowRegistry",
    "MlflowRun",
    "Notifier",
    "ObjectInfo",
    "PackageUploader",
    "RegistryStore",
    "SecretsProvider",
    "SliQuery",
    "TelemetryIngest",
    "TrafficRouter",
    "UploadResult",
    "stale_canary",
]


@dataclass(frozen=True)
class CanarySave:
    """A canary saved together with an alias move (see :meth:`RegistryStore.move_alias`)."""

    canary: Canary
    expected_revision: int
    audit: AuditEntry


def stale_canary(current: Canary | None, new: Canary, expected_revision: int) -> ConcurrencyConflict:
    """The error of a canary save whose compare-and-set failed: the stored one is not at ``expected_revision``."""
    from modelpilot.exceptions import ConcurrencyConflict

    return ConcurrencyConflict(
        f"the canary of {new.model} {new.environment} is at revision "
        f"{current.revision if current else 0}, expected {expected_revision}",
        model=new.model,
        environment=new.environment,
    )


class RegistryStore(abc.ABC):
    """Per-model registry state: versions, aliases with history, approvals, audit, monitor status.

    All state of one model lives in one partition so that a state change and its
    audit record commit in one transaction. Every method that changes state takes
    the :class:`AuditEntry` to append and appends it atomically with the change.
    """

    # -- versions -----------------------------------------------------------------
    @abc.abstractmethod
    def register_version(
        self,
        *,
        manifest: Manifest,
        manifest_digest: str,
        package_uri: str,
        registered_by: str,
        registered_at: datetime,
        source: str,
        external_id: str | None,
        status: VersionStatus,
        audit: AuditEntry,
    ) -> tuple[ModelVersion, bool]:
        """Store a new version with the next number, or return the existing one.

        Idempotent on ``(model, manifest_digest)``: returns ``(version, False)``
        when that digest is already registered, with nothing written. Otherwise
        assigns ``max(version) + 1`` atomically (no duplicates or gaps under
        concurrency), appends ``audit`` (with ``to_version`` set to the number) and
        returns ``(version, True)``.
        """

    @abc.abstractmethod
    def get_version(self, model: str, version: int) -> ModelVersion:
        """Return one version; raise ``UnknownModel`` / ``UnknownVersion``."""

    @abc.abstractmethod
    def find_version(
        self, model: str, *, manifest_digest: str | None = None, external_id: str | None = None
    ) -> ModelVersion | None:
        """Return the version with that manifest digest or external id, if any."""

    @abc.abstractmethod
    def list_versions(self, model: str) -> list[ModelVersion]:
        """Return every version of ``model`` in version order (empty if unknown)."""

    @abc.abstractmethod
    def list_models(self) -> list[str]:
        """Return the names of all registered models, sorted."""

    @abc.abstractmethod
    def set_version_status(self, model: str, version: int, status: VersionStatus, audit: AuditEntry) -> bool:
        """Set a version's status; return False (and write nothing) if it already had it."""

    # -- aliases ------------------------------------------------------------------
    @abc.abstractmethod
    def get_alias(self, model: str, environment: str) -> Alias | None:
        """Return where ``environment``'s alias points, or None if never set."""

    @abc.abstractmethod
    def move_alias(
        self, *, change: AliasChange, expected_revision: int, audit: AuditEntry, canary: CanarySave | None = None
    ) -> Alias:
        """Compare-and-set the alias and append history + audit in one transaction.

        ``expected_revision`` is the revision the caller read (0 when the alias did
        not exist); ``change.revision`` must be ``expected_revision + 1``. Raises
        ``ConcurrencyConflict`` when the alias moved in between. A retry of a
        transaction that already committed (the alias holds exactly ``change``) is
        recognised and returns the alias without writing twice.

        With ``canary`` (a canary's promotion), the same transaction also saves the
        canary under :meth:`save_canary`'s compare-and-set and appends its audit entry
        after ``audit``: either both the alias and the canary change, or neither
        (``ConcurrencyConflict`` when either moved). A retry is recognised only when
        both hold what this call wrote.
        """

    @abc.abstractmethod
    def alias_history(self, model: str, environment: str) -> list[AliasChange]:
        """Return every move of the alias, oldest first."""

    # -- canaries -----------------------------------------------------------------
    @abc.abstractmethod
    def get_canary(self, model: str, environment: str) -> Canary | None:
        """Return the latest canary of ``environment`` (active or finished), or None."""

    @abc.abstractmethod
    def save_canary(self, canary: Canary, *, expected_revision: int, audit: AuditEntry) -> Canary:
        """Compare-and-set the canary of ``(canary.model, canary.environment)`` and append ``audit``
        in one transaction.

        ``expected_revision`` is the revision the caller read (0: no canary, or starting a new
        canary over a finished one); ``canary.revision`` must be ``expected_revision + 1``.
        Raises ``ConcurrencyConflict`` when the stored canary's revision differs. A retry of a
        save that already committed (the store holds exactly ``canary``) returns it without
        writing twice.
        """

    @abc.abstractmethod
    def list_canaries(self, *, active_only: bool = True) -> list[Canary]:
        """Return the canaries of every model (only running or paused ones unless told otherwise)."""

    # -- approvals ----------------------------------------------------------------
    @abc.abstractmethod
    def add_approval(self, approval: Approval, audit: AuditEntry) -> bool:
        """Record an approval; return False (write nothing) when that approver already approved."""

    @abc.abstractmethod
    def list_approvals(self, model: str, version: int, environment: str) -> list[Approval]:
        """Return the approvals of a version for an environment."""

    # -- audit --------------------------------------------------------------------
    @abc.abstractmethod
    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        """Append a record that accompanies no other state change."""

    @abc.abstractmethod
    def audit_records(self, model: str) -> list[AuditRecord]:
        """Return ``model``'s audit chain in sequence order, exactly as stored."""

    @abc.abstractmethod
    def audit_heads(self) -> dict[str, AuditHead]:
        """Return every model's stored chain head (moved in the same transaction as each append)."""

    @abc.abstractmethod
    def adopt_audit_head(self, model: str, head: AuditHead) -> bool:
        """Store ``head`` as ``model``'s chain head only if it has none; return True when stored.

        For chains written before heads were kept (trust on first use, an explicit
        operator step): an existing head is never replaced.
        """

    @abc.abstractmethod
    def audited_models(self) -> list[str]:
        """Return, sorted, every model that has at least one audit record (whether or not it has versions)."""

    # -- outbox -------------------------------------------------------------------
    #: True when the store keeps outbox watermarks: the bus then publishes every audited event through the
    #: outbox (:mod:`modelpilot.service.outbox`), rebuilt from the audit chain, instead of straight from memory
    supports_outbox: bool = False

    def audit_head(self, model: str) -> AuditHead | None:
        """Return ``model``'s stored chain head, or None when it has none (a store may read just that one)."""
        return self.audit_heads().get(model)

    def audit_records_after(self, model: str, seq: int) -> list[AuditRecord]:
        """Return ``model``'s audit records with a ``seq`` above ``seq``, in order."""
        return [r for r in self.audit_records(model) if r.seq > seq]

    def outbox_watermark(self, model: str) -> int | None:
        """Return the ``seq`` up to which ``model``'s audited events were published, or None when never set."""
        raise NotImplementedError(f"{type(self).__name__} keeps no outbox")

    def advance_outbox_watermark(self, model: str, seq: int) -> bool:
        """Set ``model``'s watermark to ``seq`` if it has none or a lower one (compare-and-set: it never moves
        back, also when two writers race); return True when it moved."""
        raise NotImplementedError(f"{type(self).__name__} keeps no outbox")

    # -- monitor status -----------------------------------------------------------
    @abc.abstractmethod
    def put_monitor_status(self, status: MonitorStatus) -> None:
        """Store the latest verdict of a monitor (overwrites the previous one)."""

    @abc.abstractmethod
    def get_monitor_status(self, model: str, environment: str, kind: MonitorKind) -> MonitorStatus | None:
        """Return the latest verdict of a monitor, or None if it never reported."""

    @abc.abstractmethod
    def list_monitor_status(self, model: str) -> list[MonitorStatus]:
        """Return every stored monitor verdict of ``model``."""


@dataclass(frozen=True)
class ObjectInfo:
    """An object in an artifact store."""

    uri: str
    size: int
    etag: str | None = None
    last_modified: datetime | None = None


class ArtifactStore(abc.ABC):
    """Model packages, reference profiles and reports, addressed by URI.

    Each adapter owns one URI scheme (a folder path or ``file://``; ``s3://bucket/key``;
    ``az://container/blob``). Reads of large objects are streamed.
    """

    @abc.abstractmethod
    def join(self, base: str, *parts: str) -> str:
        """Return the URI of ``parts`` below ``base``."""

    @abc.abstractmethod
    def read_bytes(self, uri: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        """Return a small object's content; raise ``ArtifactMissing`` or ``DataError`` (too big)."""

    def read_if_changed(
        self, uri: str, etag: str | None, *, max_bytes: int = 16 * 1024 * 1024
    ) -> tuple[bytes | None, str]:
        """Return ``(content, etag)`` of a small object, or ``(None, etag)`` when its etag is still ``etag``.

        A conditional read: the cloud adapters ask the store (``If-None-Match``), so an
        unchanged object costs one request and no transfer. This default reads the object
        and uses its sha256 as the etag. Raises like :meth:`read_bytes`.
        """
        import hashlib

        data = self.read_bytes(uri, max_bytes=max_bytes)
        tag = hashlib.sha256(data).hexdigest()
        return (None, tag) if tag == etag else (data, tag)

    @abc.abstractmethod
    def open_chunks(self, uri: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Yield the object's content in chunks; raise ``ArtifactMissing``."""

    def local_file(self, uri: str) -> str | None:
        """Return the path of a local file holding the object's bytes, or None (the default: stream it).

        Readers that need to seek (Parquet) open such a file in place instead of spooling a copy.
        """
        return None

    @abc.abstractmethod
    def stat(self, uri: str) -> ObjectInfo:
        """Return size and etag; raise ``ArtifactMissing``."""

    def sha256(self, uri: str) -> tuple[str, int]:
        """Stream the object and return ``(hex sha256, size)`` without holding it in memory."""
        import hashlib

        digest = hashlib.sha256()
        size = 0
        for chunk in self.open_chunks(uri):
            digest.update(chunk)
            size += len(chunk)
        return digest.hexdigest(), size

    @abc.abstractmethod
    def write_bytes(
        self, uri: str, data: bytes, *, content_type: str = "application/octet-stream", write_once: bool = False
    ) -> str:
        """Store ``data`` at ``uri`` and return the URI.

        With ``write_once`` an existing object with identical content is accepted
        (idempotent) and one with different content raises ``AlreadyExists``.
        """

    @abc.abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Return the objects under ``prefix`` (recursively), sorted by URI."""


@dataclass(frozen=True)
class UploadResult:
    """What :meth:`PackageUploader.upload` did with one file.

    ``status`` is ``skipped`` (the object was already there with that digest),
    ``uploaded`` or ``resumed`` (an interrupted upload of the same content was
    finished); ``parts_sent`` and ``parts_reused`` count the requests that carried
    file content and the parts of an interrupted upload that were kept.
    """

    uri: str
    status: str
    size: int
    parts_sent: int = 0
    parts_reused: int = 0


class PackageUploader(abc.ABC):
    """Copies package files into the artifact store (``modelpilot push``): verified, resumable, never twice.

    Each adapter records the file's sha256 on the object (metadata) and lets the store
    verify what it received (S3 checksums, Blob transactional MD5); an object whose
    recorded digest and size match is not uploaded again.
    """

    @abc.abstractmethod
    def join(self, base: str, *parts: str) -> str:
        """Return the URI of ``parts`` below ``base``."""

    @abc.abstractmethod
    def recorded_sha256(self, uri: str) -> str | None:
        """Return the sha256 recorded on the object at ``uri``; None when absent or unrecorded."""

    @abc.abstractmethod
    def upload(
        self,
        path: Path,
        uri: str,
        *,
        sha256: str,
        size: int,
        content_type: str = "application/octet-stream",
        replace: bool = True,
    ) -> UploadResult:
        """Make the object at ``uri`` hold the file ``path`` (whose digest is ``sha256``).

        Skips the upload when the object already holds that content; resumes an
        interrupted multipart (block) upload of it. Raises ``DigestMismatch`` when the
        file no longer has ``sha256``; with ``replace=False`` an object holding other
        content raises ``AlreadyExists`` and is left alone.
        """


class EventPublisher(abc.ABC):
    """Puts domain events where the next function picks them up."""

    @abc.abstractmethod
    def publish(self, events: Sequence[Event], *, traceparent: str | None = None) -> None:
        """Publish ``events`` in order, each with its name, its ``to_dict()`` payload and ``traceparent``.

        An empty sequence sends nothing. A batch larger than one request of the bus
        takes is split, in order. An event too large for the bus raises
        ``InvalidInput`` before anything is sent. Raise ``TransientError`` if the bus
        is unavailable or throttling, another ``ModelPilotError`` if it refuses.
        """


class Notifier(abc.ABC):
    """Tells humans about events that need attention (blocked promotions, rollbacks, drift)."""

    @abc.abstractmethod
    def notify(self, subject: str, message: str, *, attributes: dict[str, str] | None = None) -> None:
        """Send one notification with its message and non-empty attributes.

        Any subject is accepted (a channel may rewrite it to its rules); a message
        too long for the channel is cut to fit, with a note. Raise ``TransientError``
        if the channel is unavailable or throttling, another ``ModelPilotError`` if it refuses.
        """


class SecretsProvider(abc.ABC):
    """Reads secrets (webhook keys, API tokens) from the platform's secret store."""

    @abc.abstractmethod
    def get_secret(self, name: str) -> str:
        """Return the secret's value; raise ``NotFound`` when it does not exist."""


class IdempotencyStore(abc.ABC):
    """Remembers which business keys were already processed, with their results.

    ``begin`` claims a key: it returns None when the caller should process the
    event (and later call ``complete`` or ``release``), or the stored result of
    a completed earlier run. A key claimed but not completed within
    ``lock_seconds`` (a crashed run) can be claimed again.
    """

    @abc.abstractmethod
    def begin(self, key: str, *, lock_seconds: int = 900) -> dict[str, Any] | None:
        """Claim ``key`` or return the result stored by an earlier ``complete``.

        Raises ``ConcurrencyConflict`` while another run holds a live claim.
        """

    @abc.abstractmethod
    def complete(self, key: str, result: dict[str, Any], *, ttl_seconds: int = 7 * 86400) -> None:
        """Store the result of a claimed key."""

    @abc.abstractmethod
    def release(self, key: str) -> None:
        """Drop a claim after a failure so a retry can process the event."""


@dataclass(frozen=True)
class SliQuery:
    """What a metrics source counts for one SLI.

    ``good`` and ``total`` (or ``bad`` and ``total``) are source-specific selectors:
    a PromQL counter expression for Prometheus, a metric spec for CloudWatch or
    Azure Monitor (in ``params``), a series name for the local telemetry store.
    """

    source: str
    kind: str
    total: str
    good: str | None = None
    bad: str | None = None
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class EventCounts:
    """Good and total events in a window. ``points`` is how many data points backed
    them: 0 means the source had no data at all for the window (not "zero traffic"
    when the source can tell the difference)."""

    good: float
    total: float
    points: int = 0


class MetricsSource(abc.ABC):
    """Counts good and total events for SLIs over time windows (CloudWatch, Prometheus, Azure Monitor, local)."""

    @abc.abstractmethod
    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        """Return the good and total events of ``query`` in ``[start, end)``."""

    def counts_many(self, requests: Sequence[tuple[SliQuery, datetime, datetime]]) -> list[EventCounts]:
        """Return counts for several windows; sources that can batch (GetMetricData) override this."""
        return [self.counts(q, s, e) for q, s, e in requests]


class TelemetryIngest(abc.ABC):
    """Takes request and feedback telemetry lines (JSON) into a store that a ``MetricsSource`` reads.

    Where the platform collects telemetry itself (CloudWatch, Prometheus, Azure Monitor) no backend
    provides one; the local backend's telemetry store does.
    """

    @abc.abstractmethod
    def ingest(self, lines: Iterable[str], *, source: str = "<telemetry>") -> dict[str, int]:
        """Validate every line, then store them all or none; return counts (``requests``, ``feedback``,
        ``duplicates``). Raise ``DataError`` naming the first bad line."""

    @abc.abstractmethod
    def ingest_file(self, path: str) -> dict[str, int]:
        """Ingest a JSON-lines file (see :meth:`ingest`); raise ``DataError`` when it cannot be read."""


class AlarmTags(abc.ABC):
    """Reads the tags of a cloud alarm (the alarm function maps an alarm to a model by them)."""

    @abc.abstractmethod
    def __call__(self, alarm_arn: str) -> Mapping[str, str]:
        """Return the tags of the alarm ``alarm_arn`` (empty when it has none that can be read).

        Raises ``TransientError`` when a retry may succeed (throttling, 5xx, no connection).
        """


@dataclass(frozen=True)
class MlflowModelVersion:
    """A registered model version as MLflow's REST API returns it (the fields ModelPilot reads)."""

    name: str
    version: str
    source: str
    run_id: str | None
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""
    user_id: str = ""


@dataclass(frozen=True)
class MlflowRun:
    """A tracking run: the latest value of each metric, its params and tags, and who ran it."""

    run_id: str
    experiment_id: str
    user_id: str
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowFile:
    """One artifact file of a model version: its path relative to the model and the size MLflow reports."""

    path: str
    size: int | None


class MlflowRegistry(abc.ABC):
    """An MLflow tracking server and model registry, read and written through its REST API.

    Every method raises ``TransientError`` when a retry may succeed (no connection, 429, 5xx),
    ``NotFound`` for an unknown model, version, run or alias, and ``InvalidInput`` when MLflow
    refuses the request.
    """

    #: where the server is (for lineage links)
    tracking_uri: str = ""

    @abc.abstractmethod
    def model_version(self, name: str, version: str) -> MlflowModelVersion:
        """Return one registered model version."""

    @abc.abstractmethod
    def run(self, run_id: str) -> MlflowRun:
        """Return one run with its metrics, params and tags."""

    @abc.abstractmethod
    def artifact_files(self, name: str, version: str) -> list[MlflowFile]:
        """Return every file of the version's model artifacts (recursively), sorted by path."""

    @abc.abstractmethod
    def open_artifact(self, name: str, version: str, path: str) -> Iterator[bytes]:
        """Yield the content of one artifact file of the version in chunks."""

    @abc.abstractmethod
    def alias_version(self, name: str, alias: str) -> str | None:
        """Return the version ``alias`` points to, or None when the alias is not set."""

    @abc.abstractmethod
    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (idempotent)."""

    @abc.abstractmethod
    def delete_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` (no error when it is not set)."""

    @abc.abstractmethod
    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        """Set one tag of a model version (idempotent)."""


@dataclass(frozen=True)
class LifecycleUpdate:
    """What ModelPilot writes back to a version's source registry (SageMaker: the package's ``ModelLifeCycle``).

    Azure ML versions (``external_id`` ``azureml:<workspace>/<model>:<version>``) carry the environment as
    ``stage``, one of :data:`AZUREML_STATUSES` as ``stage_status`` and the
    report text as ``description``; they are checked by their own rules (no approval status).

    Validated on construction against the limits SageMaker enforces, so no adapter sends what the
    registry would refuse: ``external_id`` is a model package ARN, ``stage`` and ``stage_status`` are
    SageMaker entity names (1-63 letters, digits, hyphens), ``description`` is at most 1024
    characters; ``approval_status`` (None: left as it is) is ``Approved``, ``Rejected`` or
    ``PendingManualApproval``. Raises ``InvalidInput`` naming the field.
    """

    external_id: str
    stage: str
    stage_status: str
    description: str
    approval_status: str | None = None

    def __post_init__(self) -> None:
        import re

        from modelpilot.exceptions import InvalidInput

        if self.external_id.startswith(AZUREML_PREFIX):
            _check_azureml_update(self)
            return
        arn = r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]{9,16}:[0-9]{12}:model-package/\S{1,2048}$"
        name = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
        if not re.match(arn, self.external_id):
            raise InvalidInput(f"{self.external_id!r} is not a SageMaker model package ARN", field="external_id")
        for what, value in (("stage", self.stage), ("stage_status", self.stage_status)):
            if not re.match(name, value):
                raise InvalidInput(f"{what} {value!r} is not a SageMaker entity name", field=what)
        if len(self.description) > 1024:
            raise InvalidInput(f"description is {len(self.description)} characters; at most 1024", field="description")
        if self.approval_status not in {None, "Approved", "Rejected", "PendingManualApproval"}:
            raise InvalidInput(
                f"approval status {self.approval_status!r} is not a SageMaker one", field="approval_status"
            )


#: an Azure ML version's ``external_id``: ``azureml:<workspace>/<model>:<version>``
AZUREML_PREFIX = "azureml:"
#: the statuses written back to Azure ML as the tag ``modelpilot.<environment>``
AZUREML_STATUSES = frozenset({"promoted", "replaced", "blocked", "rolled_back", "restored"})


def _check_azureml_update(update: LifecycleUpdate) -> None:
    """Azure ML: ``stage`` is the environment, ``stage_status`` one of :data:`AZUREML_STATUSES`."""
    import re

    from modelpilot.exceptions import InvalidInput

    ident = r"^azureml:[A-Za-z0-9][A-Za-z0-9_\-]{0,32}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,254}:[A-Za-z0-9_.\-]{1,64}$"
    if not re.match(ident, update.external_id):
        raise InvalidInput(
            f"{update.external_id!r} is not an Azure ML model version (azureml:<workspace>/<model>:<version>)",
            field="external_id",
        )
    if not re.match(r"^[a-z0-9][a-z0-9._-]{0,62}$", update.stage):  # the policy's NAME_PATTERN
        raise InvalidInput(f"environment {update.stage!r} is not a ModelPilot environment name", field="stage")
    if update.stage_status not in AZUREML_STATUSES:
        raise InvalidInput(
            f"status {update.stage_status!r} is not one of {sorted(AZUREML_STATUSES)}", field="stage_status"
        )
    if len(update.description) > 1024:
        raise InvalidInput(f"description is {len(update.description)} characters; at most 1024", field="description")
    if update.approval_status is not None:
        raise InvalidInput("Azure ML has no approval status; leave it None", field="approval_status")


class LifecycleSync(abc.ABC):
    """Writes ModelPilot's decisions back to the registry a version came from (SageMaker Model Registry, Azure ML)."""

    @abc.abstractmethod
    def write(self, update: LifecycleUpdate) -> None:
        """Set the version's lifecycle (and approval status, when given) to ``update``; writing it twice is harmless.

        Raises ``NotFound`` when the registry has no such version, ``TransientError`` when a retry
        may succeed (throttling, 5xx, no connection), another ``ModelPilotError`` when refused.
        """


class FanOutStarter(abc.ABC):
    """Starts a drift window's fan-out on the cloud's own engine (a Step Functions execution, a Durable orchestration).

    ``min_bytes``: a window whose planned size is above it is fanned out (in batches of at most
    ``min_bytes``); one at or below it is read inline by the drift batch. ``batches_inline``: the
    engine takes the batch list in its input (Durable Functions) instead of reading it from the
    artifact store (Step Functions' distributed map).
    """

    min_bytes: int
    batches_inline: bool = False

    def ready(self) -> bool:
        """Return True when :meth:`start` can start an execution now (False: read the window inline)."""
        return True

    def bound(self, client: Any) -> AbstractContextManager[None]:
        """Return a context in which :meth:`start` uses ``client``, an invocation's engine client.

        Engines whose client comes with each invocation (the Durable client binding of an Azure
        function) need it; the others ignore it.
        """
        return nullcontext()

    @abc.abstractmethod
    def start(self, name: str, execution_input: dict[str, Any]) -> bool:
        """Start the execution ``name`` with ``execution_input``; return False when one of that name was
        already started (a retried tick), so a window is started once.

        Raises ``TransientError`` when a retry may succeed, another ``ModelPilotError`` when refused.
        """


class TrafficRouter(abc.ABC):
    """Applies a canary's traffic split to a serving platform (a SageMaker endpoint's variant
    weights, a Lambda alias's routing, an Azure ML online endpoint's traffic).

    The serving manifest in the artifact store is always written; routers are optional extras
    configured per backend. ``apply`` is idempotent: applying the split already in place
    changes nothing.
    """

    @abc.abstractmethod
    def apply(self, split: TrafficSplit) -> None:
        """Route ``split``'s weights; raise ``TransientError`` (retry) or ``InvalidInput`` (a misconfigured target)."""


@dataclass
class Adapters:
    """What one backend provides: an adapter for every port, built by its ``wiring`` module.

    ``modelpilot.bootstrap`` (the composition root) asks the backend's wiring for these
    and assembles the service layer's ``Services`` from them; nothing else builds adapters.
    ``policy_location`` names a policy that must exist; ``default_policy_location`` is
    where the policy is looked for when none is named (missing there: the default policy).
    """

    registry: RegistryStore
    artifacts: ArtifactStore
    publisher: EventPublisher
    notifier: Notifier
    idempotency: IdempotencyStore | None = None
    secrets: SecretsProvider | None = None
    metrics_sources: dict[str, MetricsSource] = field(default_factory=dict)
    alarm_tags: AlarmTags | None = None
    telemetry_ingest: TelemetryIngest | None = None
    #: write-back to source registries, by version source ("sagemaker", "azureml")
    lifecycle_sync: dict[str, LifecycleSync] = field(default_factory=dict)
    uploader: PackageUploader | None = None
    #: starts a large drift window's fan-out (AWS: the drift state machine); None: every window is read inline
    drift_fanout: FanOutStarter | None = None
    #: serving platforms a canary's split is applied to, besides the serving manifest
    traffic_routers: list[TrafficRouter] = field(default_factory=list)
    #: the MLflow registry (built by bootstrap when MODELPILOT_MLFLOW_TRACKING_URI is set)
    mlflow: MlflowRegistry | None = None
    data_root: str = ""
    #: where serving manifests are written (``serving/<model>/<env>.json`` below it); None: nowhere
    serving_root: str | None = None
    policy_location: str | None = None
    default_policy_location: str | None = None
