"""In-memory fakes of every port, shipped with the package for users' and our own tests.

Each fake subclasses its port and keeps the same contract (the contract suites in
``tests/contract`` run against them too), so tests of the service layer need no
files, servers or SDKs.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelpilot.domain.audit import GENESIS, AuditEntry, AuditHead, AuditRecord, seal
from modelpilot.domain.canary import Canary, TrafficSplit, replaceable
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
from modelpilot.exceptions import (
    AlreadyExists,
    ArtifactMissing,
    ConcurrencyConflict,
    DataError,
    NotFound,
    TransientError,
    UnknownModel,
    UnknownVersion,
)
from modelpilot.ports import (
    ArtifactStore,
    EventCounts,
    EventPublisher,
    FanOutStarter,
    IdempotencyStore,
    LifecycleSync,
    MetricsSource,
    MlflowFile,
    MlflowModelVersion,
    MlflowRegistry,
    MlflowRun,
    Notifier,
    ObjectInfo,
    RegistryStore,
    SecretsProvider,
    TrafficRouter,
    stale_canary,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from modelpilot.domain.events import Event
    from modelpilot.policy import Policy
    from modelpilot.ports import CanarySave, LifecycleUpdate, SliQuery
    from modelpilot.service.messagebus import MessageBus, Services

__all__ = [
    "FakeClock",
    "FakeFanOutStarter",
    "InMemoryArtifactStore",
    "InMemoryIdempotencyStore",
    "InMemoryMetricsSource",
    "InMemoryMlflowRegistry",
    "InMemoryRegistry",
    "InMemorySecrets",
    "RecordingLifecycleSync",
    "RecordingNotifier",
    "RecordingPublisher",
    "RecordingTrafficRouter",
    "fake_bus",
    "fake_services",
]


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward and return the new time."""
        self.now += timedelta(seconds=seconds)
        return self.now


class InMemoryRegistry(RegistryStore):
    """A :class:`RegistryStore` in dictionaries, guarded by one lock (one transaction at a time)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.versions: dict[str, dict[int, ModelVersion]] = {}
        self.aliases: dict[tuple[str, str], Alias] = {}
        self.history: dict[tuple[str, str], list[AliasChange]] = {}
        self.approvals: dict[tuple[str, int, str], list[Approval]] = {}
        self.audit: dict[str, list[AuditRecord]] = {}
        self.heads: dict[str, AuditHead] = {}
        #: the outbox's "published up to seq" per model
        self.watermarks: dict[str, int] = {}
        self.monitors: dict[tuple[str, str, str], MonitorStatus] = {}
        self.canaries: dict[tuple[str, str], Canary] = {}

    def _append(self, entry: AuditEntry) -> AuditRecord:
        chain = self.audit.setdefault(entry.model, [])
        record = seal(entry, seq=len(chain) + 1, prev_hash=chain[-1].hash if chain else GENESIS)
        chain.append(record)
        self.heads[entry.model] = AuditHead(record.seq, record.hash)
        return record

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
        with self._lock:
            existing = self.find_version(manifest.name, manifest_digest=manifest_digest)
            if existing is not None:
                return existing, False
            versions = self.versions.setdefault(manifest.name, {})
            number = max(versions, default=0) + 1
            version = ModelVersion(
                manifest.name,
                number,
                manifest_digest,
                manifest,
                package_uri,
                registered_by,
                registered_at,
                status,
                source,
                external_id,
            )
            versions[number] = version
            self._append(replace(audit, to_version=number))
            return version, True

    def get_version(self, model: str, version: int) -> ModelVersion:
        if model not in self.versions:
            raise UnknownModel(f"unknown model {model!r}", model=model)
        try:
            return self.versions[model][version]
        except KeyError:
            raise UnknownVersion(f"{model} has no version {version}", model=model, version=version) from None

    def find_version(
        self, model: str, *, manifest_digest: str | None = None, external_id: str | None = None
    ) -> ModelVersion | None:
        if manifest_digest is None and external_id is None:
            return None
        for version in self.versions.get(model, {}).values():
            if manifest_digest is not None and version.manifest_digest == manifest_digest:
                return version
            if manifest_digest is None and external_id is not None and version.external_id == external_id:
                return version
        return None

    def list_versions(self, model: str) -> list[ModelVersion]:
        return [v for _, v in sorted(self.versions.get(model, {}).items())]

    def list_models(self) -> list[str]:
        return sorted(self.versions)

    def set_version_status(self, model: str, version: int, status: VersionStatus, audit: AuditEntry) -> bool:
        with self._lock:
            current = self.get_version(model, version)
            if current.status == status:
                return False
            self.versions[model][version] = replace(current, status=status)
            self._append(audit)
            return True

    def get_alias(self, model: str, environment: str) -> Alias | None:
        return self.aliases.get((model, environment))

    def move_alias(
        self, *, change: AliasChange, expected_revision: int, audit: AuditEntry, canary: CanarySave | None = None
    ) -> Alias:
        if change.revision != expected_revision + 1:
            raise ValueError("change.revision must be expected_revision + 1")
        key = (change.model, change.environment)
        with self._lock:
            current = self.aliases.get(key)
            revision = current.revision if current else 0
            stored = self.canaries.get(key) if canary is not None else None
            canary_ok = canary is None or replaceable(stored, canary.canary, canary.expected_revision)
            if revision != expected_revision or not canary_ok:
                history = self.history.get(key, [])
                done = len(history) >= change.revision and history[change.revision - 1] == change
                if done and current is not None and (canary is None or stored == canary.canary):
                    return current
                if revision != expected_revision or canary is None:
                    raise ConcurrencyConflict(
                        f"{change.model} {change.environment} is at revision {revision}, expected {expected_revision}"
                    )
                raise stale_canary(stored, canary.canary, canary.expected_revision)
            alias = Alias(change.model, change.environment, change.to_version, change.revision, change.at, change.actor)
            self.aliases[key] = alias
            self.history.setdefault(key, []).append(change)
            self._append(audit)
            if canary is not None:
                self.canaries[key] = canary.canary
                self._append(canary.audit)
            return alias

    def alias_history(self, model: str, environment: str) -> list[AliasChange]:
        return list(self.history.get((model, environment), []))

    def get_canary(self, model: str, environment: str) -> Canary | None:
        return self.canaries.get((model, environment))

    def save_canary(self, canary: Canary, *, expected_revision: int, audit: AuditEntry) -> Canary:
        key = (canary.model, canary.environment)
        with self._lock:
            current = self.canaries.get(key)
            if not replaceable(current, canary, expected_revision):
                if current is not None and current == canary:
                    return current  # a retry of a save that committed
                raise stale_canary(current, canary, expected_revision)
            self.canaries[key] = canary
            self._append(audit)
            return canary

    def list_canaries(self, *, active_only: bool = True) -> list[Canary]:
        found = sorted(self.canaries.items())
        return [c for _, c in found if c.active or not active_only]

    def add_approval(self, approval: Approval, audit: AuditEntry) -> bool:
        with self._lock:
            bucket = self.approvals.setdefault((approval.model, approval.version, approval.environment), [])
            if any(a.approver == approval.approver for a in bucket):
                return False
            bucket.append(approval)
            self._append(audit)
            return True

    def list_approvals(self, model: str, version: int, environment: str) -> list[Approval]:
        return list(self.approvals.get((model, version, environment), []))

    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        with self._lock:
            return self._append(entry)

    def audit_records(self, model: str) -> list[AuditRecord]:
        return list(self.audit.get(model, []))

    def audit_heads(self) -> dict[str, AuditHead]:
        return dict(self.heads)

    def adopt_audit_head(self, model: str, head: AuditHead) -> bool:
        with self._lock:
            if model in self.heads:
                return False
            self.heads[model] = head
            return True

    def audited_models(self) -> list[str]:
        return sorted(m for m, chain in self.audit.items() if chain)

    supports_outbox = True

    def outbox_watermark(self, model: str) -> int | None:
        return self.watermarks.get(model)

    def advance_outbox_watermark(self, model: str, seq: int) -> bool:
        with self._lock:
            if self.watermarks.get(model, -1) >= seq:
                return False
            self.watermarks[model] = seq
            return True

    def put_monitor_status(self, status: MonitorStatus) -> None:
        self.monitors[(status.model, status.environment, status.kind)] = status

    def get_monitor_status(self, model: str, environment: str, kind: MonitorKind) -> MonitorStatus | None:
        return self.monitors.get((model, environment, kind))

    def list_monitor_status(self, model: str) -> list[MonitorStatus]:
        return [s for (m, _, _), s in sorted(self.monitors.items()) if m == model]


class InMemoryArtifactStore(ArtifactStore):
    """Objects in a dictionary keyed by URI (``mem://`` or any string)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def join(self, base: str, *parts: str) -> str:
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])

    def read_bytes(self, uri: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        if uri not in self.objects:
            raise ArtifactMissing(f"{uri} does not exist", uri=uri)
        data = self.objects[uri]
        if len(data) > max_bytes:
            raise DataError(f"{uri} is {len(data)} bytes, more than the {max_bytes} allowed here", uri=uri)
        return data

    def open_chunks(self, uri: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        if uri not in self.objects:
            raise ArtifactMissing(f"{uri} does not exist", uri=uri)
        data = self.objects[uri]
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def stat(self, uri: str) -> ObjectInfo:
        if uri not in self.objects:
            raise ArtifactMissing(f"{uri} does not exist", uri=uri)
        data = self.objects[uri]
        return ObjectInfo(uri, len(data), hashlib.md5(data, usedforsecurity=False).hexdigest())

    def write_bytes(
        self, uri: str, data: bytes, *, content_type: str = "application/octet-stream", write_once: bool = False
    ) -> str:
        if write_once and uri in self.objects and self.objects[uri] != data:
            raise AlreadyExists(f"{uri} already exists with other content", uri=uri)
        self.objects[uri] = bytes(data)
        return uri

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = prefix.rstrip("/") + "/"
        return [self.stat(u) for u in sorted(self.objects) if u.startswith(base) or u == prefix]


class RecordingPublisher(EventPublisher):
    """Keeps every published event (and its traceparent) in a list."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.traceparents: list[str | None] = []

    def publish(self, events: Sequence[Event], *, traceparent: str | None = None) -> None:
        self.events.extend(events)
        self.traceparents.extend([traceparent] * len(events))

    def names(self) -> list[str]:
        """Return the names of the events published so far."""
        return [e.name for e in self.events]


class RecordingNotifier(Notifier):
    """Keeps every notification in a list: ``sent`` holds ``(subject, message)``, ``attributes`` their attributes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.attributes: list[dict[str, str]] = []

    def notify(self, subject: str, message: str, *, attributes: dict[str, str] | None = None) -> None:
        self.sent.append((subject, message))
        self.attributes.append(dict(attributes or {}))


class RecordingLifecycleSync(LifecycleSync):
    """Keeps every write-back: ``updates`` in order, ``current`` the last one per package.

    ``packages`` (when given) are the packages that exist: another one raises ``NotFound``, as the
    registry does; ``fail`` (when set) is raised by the next writes, to test how failures surface.
    """

    def __init__(self, packages: set[str] | None = None) -> None:
        self.packages = packages
        self.updates: list[LifecycleUpdate] = []
        self.current: dict[str, LifecycleUpdate] = {}
        self.fail: Exception | None = None

    def write(self, update: LifecycleUpdate) -> None:
        if self.fail is not None:
            raise self.fail
        if self.packages is not None and update.external_id not in self.packages:
            raise NotFound(f"model package {update.external_id} does not exist", external_id=update.external_id)
        self.updates.append(update)
        self.current[update.external_id] = update


class FakeFanOutStarter(FanOutStarter):
    """Records the executions started, by name (a name started again returns False, as Step Functions refuses it)."""

    def __init__(self, min_bytes: int) -> None:
        self.min_bytes = min_bytes
        self.started: dict[str, dict[str, Any]] = {}

    def start(self, name: str, execution_input: dict[str, Any]) -> bool:
        if name in self.started:
            return False
        self.started[name] = execution_input
        return True


class InMemorySecrets(SecretsProvider):
    """Secrets from a dictionary."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})

    def get_secret(self, name: str) -> str:
        try:
            return self.values[name]
        except KeyError:
            raise NotFound(f"secret {name!r} does not exist", name=name) from None


class InMemoryIdempotencyStore(IdempotencyStore):
    """Claims and results in a dictionary, with wall-clock expiry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: dict[str, tuple[str, dict[str, Any] | None, float]] = {}

    def begin(self, key: str, *, lock_seconds: int = 900) -> dict[str, Any] | None:
        with self._lock:
            now = time.time()
            entry = self.entries.get(key)
            if entry is not None and entry[2] > now:
                if entry[0] == "completed":
                    return dict(entry[1] or {})
                raise ConcurrencyConflict(f"event {key} is being processed by another run", key=key)
            self.entries[key] = ("in_progress", None, now + lock_seconds)
            return None

    def complete(self, key: str, result: dict[str, Any], *, ttl_seconds: int = 7 * 86400) -> None:
        with self._lock:
            self.entries[key] = ("completed", dict(result), time.time() + ttl_seconds)

    def release(self, key: str) -> None:
        with self._lock:
            entry = self.entries.get(key)
            if entry is not None and entry[0] == "in_progress":
                del self.entries[key]


class InMemoryMetricsSource(MetricsSource):
    """Counts from samples kept in memory, keyed by a query's ``total`` selector.

    Each sample is ``(time, good, total)``; a window counts the samples with
    ``start <= time < end``, and ``points`` is how many there were (0: no data).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples: dict[str, list[tuple[datetime, float, float]]] = {}
        #: samples of one version (``record(..., version=n)``): counted only by queries labelled with it
        self.version_samples: dict[tuple[str, int], list[tuple[datetime, float, float]]] = {}

    def record(self, selector: str, at: datetime, *, good: float, total: float, version: int | None = None) -> None:
        """Add one sample of ``total`` events, ``good`` of them good, under ``selector`` (of one ``version``)."""
        if at.tzinfo is None:
            raise DataError(f"sample time {at.isoformat()} has no time zone", selector=selector)
        if not 0 <= good <= total:
            raise DataError(f"a sample needs 0 <= good <= total, got good={good} total={total}", selector=selector)
        with self._lock:
            if version is None:
                self.samples.setdefault(selector, []).append((at, float(good), float(total)))
            else:
                self.version_samples.setdefault((selector, version), []).append((at, float(good), float(total)))

    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        version = ((query.params or {}).get("labels") or {}).get("version")
        with self._lock:
            found = list(self.samples.get(query.total, []))
            if version is not None:
                found += self.version_samples.get((query.total, int(version)), [])
            window = [s for s in found if start <= s[0] < end]
        return EventCounts(
            good=sum(good for _, good, _ in window), total=sum(total for _, _, total in window), points=len(window)
        )


class RecordingTrafficRouter(TrafficRouter):
    """A :class:`TrafficRouter` that records each split applied; ``fail_times`` makes the next calls raise."""

    def __init__(self, fail_times: int = 0) -> None:
        self.applied: list[TrafficSplit] = []
        self.fail_times = fail_times
        self.calls = 0

    def apply(self, split: TrafficSplit) -> None:
        self.calls += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise TransientError("the serving platform is unavailable")
        self.applied.append(split)

    @property
    def current(self) -> TrafficSplit | None:
        """The last split applied."""
        return self.applied[-1] if self.applied else None


class InMemoryMlflowRegistry(MlflowRegistry):
    """An MLflow registry in dictionaries: versions, runs, artifact files, aliases and tags.

    ``fail_writes`` makes every write raise ``TransientError`` (an MLflow outage); ``writes`` records each write.
    """

    tracking_uri = "http://mlflow.invalid"

    def __init__(self) -> None:
        self.versions: dict[tuple[str, str], MlflowModelVersion] = {}
        self.runs: dict[str, MlflowRun] = {}
        self.files: dict[tuple[str, str], dict[str, bytes]] = {}
        self.aliases: dict[tuple[str, str], str] = {}
        self.tags: dict[tuple[str, str], dict[str, str]] = {}
        self.writes: list[tuple[str, ...]] = []
        self.fail_writes = False

    def add_version(
        self, name: str, version: str, files: dict[str, bytes], *, run: MlflowRun | None = None
    ) -> MlflowModelVersion:
        """Store a READY version with its files (and its run)."""
        mv = MlflowModelVersion(name, version, f"models:/m-{name}-{version}", run.run_id if run else None, "READY")
        self.versions[(name, version)] = mv
        self.files[(name, version)] = dict(files)
        if run is not None:
            self.runs[run.run_id] = run
        return mv

    def _version(self, name: str, version: str) -> MlflowModelVersion:
        try:
            return self.versions[(name, version)]
        except KeyError:
            raise NotFound(f"MLflow {name} v{version} does not exist") from None

    def model_version(self, name: str, version: str) -> MlflowModelVersion:
        mv = self._version(name, version)
        aliases = tuple(a for (n, a), v in self.aliases.items() if n == name and v == version)
        return replace(mv, tags=dict(self.tags.get((name, version), {})), aliases=aliases)

    def run(self, run_id: str) -> MlflowRun:
        try:
            return self.runs[run_id]
        except KeyError:
            raise NotFound(f"MLflow run {run_id} does not exist") from None

    def artifact_files(self, name: str, version: str) -> list[MlflowFile]:
        self._version(name, version)
        return [MlflowFile(p, len(d)) for p, d in sorted(self.files[(name, version)].items())]

    def open_artifact(self, name: str, version: str, path: str) -> Iterator[bytes]:
        data = self.files[(name, version)][path]
        for start in range(0, len(data), 4):
            yield data[start : start + 4]

    def alias_version(self, name: str, alias: str) -> str | None:
        return self.aliases.get((name, alias))

    def _write(self, *call: str) -> None:
        if self.fail_writes:
            raise TransientError("MLflow is unavailable")
        self.writes.append(call)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._version(name, version)
        self._write("set_alias", name, alias, version)
        self.aliases[(name, alias)] = version

    def delete_alias(self, name: str, alias: str) -> None:
        self._write("delete_alias", name, alias)
        self.aliases.pop((name, alias), None)

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._version(name, version)
        self._write("set_version_tag", name, version, key)
        self.tags.setdefault((name, version), {})[key] = value


def fake_services(policy: Policy | None = None, **overrides: Any) -> Services:
    """Return :class:`Services` made of fakes; ``policy`` defaults to the default policy."""
    from modelpilot.policy import default_policy
    from modelpilot.service.messagebus import Services

    chosen = policy or default_policy()
    parts: dict[str, Any] = {
        "registry": InMemoryRegistry(),
        "artifacts": InMemoryArtifactStore(),
        "publisher": RecordingPublisher(),
        "notifier": RecordingNotifier(),
        "policy_loader": lambda: chosen,
        "clock": FakeClock(),
        "secrets": InMemorySecrets(),
        "idempotency": InMemoryIdempotencyStore(),
        "lifecycle_sync": {"sagemaker": RecordingLifecycleSync()},
        "data_root": "mem://data",
    }
    parts.update(overrides)
    parts.setdefault("serving_root", parts["data_root"])
    return Services(**parts)


def fake_bus(policy: Policy | None = None, **overrides: Any) -> MessageBus:
    """Return a message bus over :func:`fake_services`."""
    from modelpilot.service.messagebus import MessageBus

    return MessageBus(fake_services(policy, **overrides))
