"""SQLite registry: versions, aliases with history, approvals, audit chain, monitor status.

Every state change runs in one ``BEGIN IMMEDIATE`` transaction (the database's
write lock), so the change, its audit record and the model's chain head
(``audit_heads``) commit together, and several processes can share one file
safely (WAL mode, a busy timeout). A file that is not a readable database raises
``StoreCorrupt`` with SQLite's one-line reason.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.domain.audit import GENESIS, AuditEntry, AuditHead, AuditRecord, seal
from modelpilot.domain.canary import Canary, replaceable
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
    ConcurrencyConflict,
    InvalidInput,
    StoreCorrupt,
    TransientError,
    UnknownModel,
    UnknownVersion,
)
from modelpilot.ports import RegistryStore, stale_canary

if TYPE_CHECKING:
    from collections.abc import Iterator

    from modelpilot.ports import CanarySave

__all__ = ["SqliteRegistry", "sqlite_corruption"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    model TEXT NOT NULL, version INTEGER NOT NULL, manifest_digest TEXT NOT NULL, manifest TEXT NOT NULL,
    package_uri TEXT NOT NULL, registered_by TEXT NOT NULL, registered_at TEXT NOT NULL,
    status TEXT NOT NULL, source TEXT NOT NULL, external_id TEXT,
    PRIMARY KEY (model, version), UNIQUE (model, manifest_digest));
CREATE TABLE IF NOT EXISTS aliases (
    model TEXT NOT NULL, environment TEXT NOT NULL, version INTEGER NOT NULL, revision INTEGER NOT NULL,
    updated_at TEXT NOT NULL, updated_by TEXT NOT NULL, PRIMARY KEY (model, environment));
CREATE TABLE IF NOT EXISTS alias_history (
    model TEXT NOT NULL, environment TEXT NOT NULL, revision INTEGER NOT NULL, from_version INTEGER,
    to_version INTEGER NOT NULL, action TEXT NOT NULL, actor TEXT NOT NULL, reason TEXT NOT NULL,
    at TEXT NOT NULL, trigger TEXT, PRIMARY KEY (model, environment, revision));
CREATE TABLE IF NOT EXISTS approvals (
    model TEXT NOT NULL, version INTEGER NOT NULL, environment TEXT NOT NULL, approver TEXT NOT NULL,
    at TEXT NOT NULL, comment TEXT NOT NULL, PRIMARY KEY (model, version, environment, approver));
CREATE TABLE IF NOT EXISTS audit (
    model TEXT NOT NULL, seq INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    timestamp TEXT NOT NULL, environment TEXT, from_version INTEGER, to_version INTEGER,
    reason TEXT NOT NULL, gate_report_digest TEXT, trigger TEXT, evidence TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (model, seq));
CREATE TABLE IF NOT EXISTS monitor_status (
    model TEXT NOT NULL, environment TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
    version INTEGER, updated_at TEXT NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL,
    PRIMARY KEY (model, environment, kind));
CREATE TABLE IF NOT EXISTS audit_heads (
    model TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    model TEXT NOT NULL PRIMARY KEY, published_seq INTEGER NOT NULL);
"""

#: canaries: one row per model and environment, the latest canary (a finished one is replaced by the next)
_CANARY_SCHEMA = """
CREATE TABLE IF NOT EXISTS canaries (
    model TEXT NOT NULL, environment TEXT NOT NULL, revision INTEGER NOT NULL, state TEXT NOT NULL,
    doc TEXT NOT NULL, PRIMARY KEY (model, environment))
"""

_SCHEMA_VERSION = 1

# a database written before chain heads were kept: anchor each chain at its current end, once
_BACKFILL_HEADS = """
INSERT INTO audit_heads SELECT a.model, a.seq, a.hash FROM audit a
WHERE a.seq = (SELECT MAX(b.seq) FROM audit b WHERE b.model = a.model)
"""


class SqliteRegistry(RegistryStore):
    """A :class:`RegistryStore` in one SQLite file.

    Parameters
    ----------
    path:
        The database file; created with its schema on first use.
    timeout:
        Seconds a writer waits for the write lock before ``TransientError``.
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite_corruption(self.path):
            conn = self._conn()
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name='audit_heads'").fetchone() is None:
                self._create_schema(conn)
            elif conn.execute("SELECT 1 FROM sqlite_master WHERE name='outbox'").fetchone() is None:
                # a database from before the outbox: add its table (the relay sets each model's watermark)
                conn.execute(_SCHEMA.split(";")[-2])
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name='canaries'").fetchone() is None:
                conn.execute(_CANARY_SCHEMA)  # a database from before canaries: add their table

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        """Create the tables; a database that had an audit but no heads gets each chain's end as its head."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            heads_missing = conn.execute("SELECT 1 FROM sqlite_master WHERE name='audit_heads'").fetchone() is None
            # user_version 1: heads have been kept since this file was created or migrated; a heads table
            # that disappears later is not backfilled (that would anchor a truncated chain): verify flags it
            migrate = heads_missing and conn.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if migrate:
                conn.execute(_BACKFILL_HEADS)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- connections ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with sqlite_corruption(self.path):
            conn = self._conn()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise TransientError(f"registry database is busy: {exc}") from exc
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with sqlite_corruption(self.path):
            try:
                return self._conn().execute(sql, args).fetchall()
            except OverflowError:  # a number SQLite cannot hold (2**63 or more) names nothing stored
                raise InvalidInput("a version or number is larger than 2**63, which nothing stored can match") from None

    # -- audit helpers ---------------------------------------------------------------
    def _append(self, conn: sqlite3.Connection, entry: AuditEntry) -> AuditRecord:
        row = conn.execute(
            "SELECT seq, hash FROM audit WHERE model=? ORDER BY seq DESC LIMIT 1", (entry.model,)
        ).fetchone()
        seq, prev = (row["seq"] + 1, row["hash"]) if row else (1, GENESIS)
        record = seal(entry, seq=seq, prev_hash=prev)
        conn.execute(
            "INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.model,
                record.seq,
                record.actor,
                record.action,
                record.timestamp.isoformat(),
                record.environment,
                record.from_version,
                record.to_version,
                record.reason,
                record.gate_report_digest,
                record.trigger,
                json.dumps(record.evidence, sort_keys=True),
                record.prev_hash,
                record.hash,
            ),
        )
        conn.execute(
            "INSERT INTO audit_heads VALUES (?,?,?) "
            "ON CONFLICT(model) DO UPDATE SET seq=excluded.seq, hash=excluded.hash",
            (record.model, record.seq, record.hash),
        )
        return record

    # -- versions --------------------------------------------------------------------
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
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM versions WHERE model=? AND manifest_digest=?", (manifest.name, manifest_digest)
            ).fetchone()
            if row is not None:
                return _version(row), False
            top = conn.execute("SELECT MAX(version) AS v FROM versions WHERE model=?", (manifest.name,)).fetchone()
            number = (top["v"] or 0) + 1
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
            conn.execute(
                "INSERT INTO versions VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    version.model,
                    number,
                    manifest_digest,
                    json.dumps(manifest.to_dict(), sort_keys=True),
                    package_uri,
                    registered_by,
                    registered_at.isoformat(),
                    status,
                    source,
                    external_id,
                ),
            )
            self._append(conn, _with_version(audit, number))
            return version, True

    def get_version(self, model: str, version: int) -> ModelVersion:
        rows = self._read("SELECT * FROM versions WHERE model=? AND version=?", model, version)
        if rows:
            return _version(rows[0])
        if not self._read("SELECT 1 FROM versions WHERE model=? LIMIT 1", model):
            raise UnknownModel(f"unknown model {model!r}", model=model)
        raise UnknownVersion(f"{model} has no version {version}", model=model, version=version)

    def find_version(
        self, model: str, *, manifest_digest: str | None = None, external_id: str | None = None
    ) -> ModelVersion | None:
        if manifest_digest is not None:
            rows = self._read("SELECT * FROM versions WHERE model=? AND manifest_digest=?", model, manifest_digest)
        elif external_id is not None:
            rows = self._read("SELECT * FROM versions WHERE model=? AND external_id=?", model, external_id)
        else:
            return None
        return _version(rows[0]) if rows else None

    def list_versions(self, model: str) -> list[ModelVersion]:
        return [_version(r) for r in self._read("SELECT * FROM versions WHERE model=? ORDER BY version", model)]

    def list_models(self) -> list[str]:
        return [r["model"] for r in self._read("SELECT DISTINCT model FROM versions ORDER BY model")]

    def set_version_status(self, model: str, version: int, status: VersionStatus, audit: AuditEntry) -> bool:
        with self._write() as conn:
            row = conn.execute("SELECT status FROM versions WHERE model=? AND version=?", (model, version)).fetchone()
            if row is None:
                raise UnknownVersion(f"{model} has no version {version}", model=model, version=version)
            if row["status"] == status:
                return False
            conn.execute("UPDATE versions SET status=? WHERE model=? AND version=?", (status, model, version))
            self._append(conn, audit)
            return True

    # -- aliases ---------------------------------------------------------------------
    def get_alias(self, model: str, environment: str) -> Alias | None:
        rows = self._read("SELECT * FROM aliases WHERE model=? AND environment=?", model, environment)
        return _alias(rows[0]) if rows else None

    def move_alias(
        self, *, change: AliasChange, expected_revision: int, audit: AuditEntry, canary: CanarySave | None = None
    ) -> Alias:
        if change.revision != expected_revision + 1:
            raise ValueError("change.revision must be expected_revision + 1")
        with self._write() as conn:
            row = conn.execute(
                "SELECT * FROM aliases WHERE model=? AND environment=?", (change.model, change.environment)
            ).fetchone()
            current = row["revision"] if row else 0
            stored = self._canary_in(conn, change.model, change.environment) if canary is not None else None
            canary_ok = canary is None or replaceable(stored, canary.canary, canary.expected_revision)
            if current != expected_revision or not canary_ok:
                done = conn.execute(
                    "SELECT * FROM alias_history WHERE model=? AND environment=? AND revision=?",
                    (change.model, change.environment, change.revision),
                ).fetchone()
                if (
                    done is not None
                    and _same_change(done, change)
                    and row is not None
                    and (canary is None or stored == canary.canary)
                ):
                    return _alias(row)
                if current == expected_revision and canary is not None:
                    raise stale_canary(stored, canary.canary, canary.expected_revision)
                raise ConcurrencyConflict(
                    f"{change.model} {change.environment} is at revision {current}, expected {expected_revision}",
                    model=change.model,
                    environment=change.environment,
                )
            conn.execute(
                "INSERT INTO aliases VALUES (?,?,?,?,?,?) ON CONFLICT(model, environment) DO UPDATE SET "
                "version=excluded.version, revision=excluded.revision, updated_at=excluded.updated_at, "
                "updated_by=excluded.updated_by",
                (
                    change.model,
                    change.environment,
                    change.to_version,
                    change.revision,
                    change.at.isoformat(),
                    change.actor,
                ),
            )
            conn.execute(
                "INSERT INTO alias_history VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    change.model,
                    change.environment,
                    change.revision,
                    change.from_version,
                    change.to_version,
                    change.action,
                    change.actor,
                    change.reason,
                    change.at.isoformat(),
                    change.trigger,
                ),
            )
            self._append(conn, audit)
            if canary is not None:
                self._put_canary(conn, canary.canary)
                self._append(conn, canary.audit)
            return Alias(change.model, change.environment, change.to_version, change.revision, change.at, change.actor)

    def alias_history(self, model: str, environment: str) -> list[AliasChange]:
        rows = self._read(
            "SELECT * FROM alias_history WHERE model=? AND environment=? ORDER BY revision", model, environment
        )
        return [_change(r) for r in rows]

    # -- canaries --------------------------------------------------------------------
    def get_canary(self, model: str, environment: str) -> Canary | None:
        rows = self._read("SELECT doc FROM canaries WHERE model=? AND environment=?", model, environment)
        return Canary.from_dict(json.loads(rows[0]["doc"])) if rows else None

    def save_canary(self, canary: Canary, *, expected_revision: int, audit: AuditEntry) -> Canary:
        with self._write() as conn:
            current = self._canary_in(conn, canary.model, canary.environment)
            if not replaceable(current, canary, expected_revision):
                if current is not None and current == canary:
                    return current  # a retry of a save that committed
                raise stale_canary(current, canary, expected_revision)
            self._put_canary(conn, canary)
            self._append(conn, audit)
            return canary

    @staticmethod
    def _canary_in(conn: sqlite3.Connection, model: str, environment: str) -> Canary | None:
        row = conn.execute("SELECT doc FROM canaries WHERE model=? AND environment=?", (model, environment)).fetchone()
        return Canary.from_dict(json.loads(row["doc"])) if row else None

    @staticmethod
    def _put_canary(conn: sqlite3.Connection, canary: Canary) -> None:
        conn.execute(
            "INSERT INTO canaries VALUES (?,?,?,?,?) ON CONFLICT(model, environment) DO UPDATE SET "
            "revision=excluded.revision, state=excluded.state, doc=excluded.doc",
            (
                canary.model,
                canary.environment,
                canary.revision,
                canary.state,
                json.dumps(canary.to_dict(), sort_keys=True),
            ),
        )

    def list_canaries(self, *, active_only: bool = True) -> list[Canary]:
        sql = "SELECT doc FROM canaries"
        if active_only:
            sql += " WHERE state IN ('running', 'paused')"
        return [Canary.from_dict(json.loads(r["doc"])) for r in self._read(sql + " ORDER BY model, environment")]

    # -- approvals -------------------------------------------------------------------
    def add_approval(self, approval: Approval, audit: AuditEntry) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO approvals VALUES (?,?,?,?,?,?)",
                (
                    approval.model,
                    approval.version,
                    approval.environment,
                    approval.approver,
                    approval.at.isoformat(),
                    approval.comment,
                ),
            )
            if cur.rowcount == 0:
                return False
            self._append(conn, audit)
            return True

    def list_approvals(self, model: str, version: int, environment: str) -> list[Approval]:
        rows = self._read(
            "SELECT * FROM approvals WHERE model=? AND version=? AND environment=? ORDER BY at",
            model,
            version,
            environment,
        )
        return [
            Approval(
                r["model"], r["version"], r["environment"], r["approver"], datetime.fromisoformat(r["at"]), r["comment"]
            )
            for r in rows
        ]

    # -- audit -----------------------------------------------------------------------
    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        with self._write() as conn:
            return self._append(conn, entry)

    def audit_records(self, model: str) -> list[AuditRecord]:
        return self._records(self._read("SELECT * FROM audit WHERE model=? ORDER BY seq", model))

    def _records(self, rows: list[sqlite3.Row]) -> list[AuditRecord]:
        return [
            AuditRecord(
                model=r["model"],
                seq=r["seq"],
                actor=r["actor"],
                action=r["action"],
                timestamp=datetime.fromisoformat(r["timestamp"]),
                environment=r["environment"],
                from_version=r["from_version"],
                to_version=r["to_version"],
                reason=r["reason"],
                gate_report_digest=r["gate_report_digest"],
                trigger=r["trigger"],
                evidence=json.loads(r["evidence"]),
                prev_hash=r["prev_hash"],
                hash=r["hash"],
            )
            for r in rows
        ]

    def audit_heads(self) -> dict[str, AuditHead]:
        return {r["model"]: AuditHead(r["seq"], r["hash"]) for r in self._read("SELECT * FROM audit_heads")}

    def adopt_audit_head(self, model: str, head: AuditHead) -> bool:
        with self._write() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO audit_heads VALUES (?,?,?)", (model, head.seq, head.hash))
            return cur.rowcount == 1

    supports_outbox = True

    def audit_head(self, model: str) -> AuditHead | None:
        rows = self._read("SELECT seq, hash FROM audit_heads WHERE model=?", model)
        return AuditHead(rows[0]["seq"], rows[0]["hash"]) if rows else None

    def audit_records_after(self, model: str, seq: int) -> list[AuditRecord]:
        return self._records(self._read("SELECT * FROM audit WHERE model=? AND seq>? ORDER BY seq", model, seq))

    def outbox_watermark(self, model: str) -> int | None:
        rows = self._read("SELECT published_seq FROM outbox WHERE model=?", model)
        return int(rows[0]["published_seq"]) if rows else None

    def advance_outbox_watermark(self, model: str, seq: int) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO outbox VALUES (?,?) ON CONFLICT(model) DO UPDATE SET published_seq=excluded.published_seq "
                "WHERE outbox.published_seq < excluded.published_seq",
                (model, seq),
            )
            return cur.rowcount > 0

    def audited_models(self) -> list[str]:
        return [r["model"] for r in self._read("SELECT DISTINCT model FROM audit ORDER BY model")]

    # -- monitor status ----------------------------------------------------------------
    def put_monitor_status(self, status: MonitorStatus) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO monitor_status VALUES (?,?,?,?,?,?,?,?)",
                (
                    status.model,
                    status.environment,
                    status.kind,
                    status.state,
                    status.version,
                    status.updated_at.isoformat(),
                    status.summary,
                    json.dumps(status.details, default=str),
                ),
            )

    def get_monitor_status(self, model: str, environment: str, kind: MonitorKind) -> MonitorStatus | None:
        rows = self._read(
            "SELECT * FROM monitor_status WHERE model=? AND environment=? AND kind=?", model, environment, kind
        )
        return _status(rows[0]) if rows else None

    def list_monitor_status(self, model: str) -> list[MonitorStatus]:
        return [
            _status(r)
            for r in self._read("SELECT * FROM monitor_status WHERE model=? ORDER BY environment, kind", model)
        ]


@contextmanager
def sqlite_corruption(path: Path) -> Iterator[None]:
    """Turn SQLite's "not a database" / "malformed" errors into ``StoreCorrupt`` (one line, no traceback)."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc)
        if "locked" in text or "busy" in text:
            raise TransientError(f"registry database is busy: {text}") from exc
        raise StoreCorrupt(f"database {path.name} cannot be read: {text}", path=str(path)) from None
    except sqlite3.IntegrityError:
        raise
    except sqlite3.DatabaseError as exc:
        raise StoreCorrupt(f"database {path.name} is corrupt: {exc}", path=str(path)) from None


def _with_version(entry: AuditEntry, number: int) -> AuditEntry:
    from dataclasses import replace

    return replace(entry, to_version=number)


def _same_change(row: sqlite3.Row, change: AliasChange) -> bool:
    return bool(
        row["to_version"] == change.to_version
        and row["from_version"] == change.from_version
        and row["at"] == change.at.isoformat()
        and row["actor"] == change.actor
    )


def _version(row: sqlite3.Row) -> ModelVersion:
    return ModelVersion(
        model=row["model"],
        version=row["version"],
        manifest_digest=row["manifest_digest"],
        manifest=Manifest.from_dict(json.loads(row["manifest"])),
        package_uri=row["package_uri"],
        registered_by=row["registered_by"],
        registered_at=datetime.fromisoformat(row["registered_at"]),
        status=row["status"],
        source=row["source"],
        external_id=row["external_id"],
    )


def _alias(row: sqlite3.Row) -> Alias:
    return Alias(
        row["model"],
        row["environment"],
        row["version"],
        row["revision"],
        datetime.fromisoformat(row["updated_at"]),
        row["updated_by"],
    )


def _change(row: sqlite3.Row) -> AliasChange:
    return AliasChange(
        model=row["model"],
        environment=row["environment"],
        revision=row["revision"],
        from_version=row["from_version"],
        to_version=row["to_version"],
        action=row["action"],
        actor=row["actor"],
        reason=row["reason"],
        at=datetime.fromisoformat(row["at"]),
        trigger=row["trigger"],
    )


def _status(row: sqlite3.Row) -> MonitorStatus:
    return MonitorStatus(
        row["model"],
        row["environment"],
        row["kind"],
        row["state"],
        row["version"],
        datetime.fromisoformat(row["updated_at"]),
        row["summary"],
        json.loads(row["details"]),
    )
