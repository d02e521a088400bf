"""Table Storage registry: one partition per model, every change one entity-group transaction.

Each state change commits in one ``submit_transaction`` with its audit record:
the changed rows, the new ``AUDIT:<seq>`` row and the ``META`` row (audit head and
version count), updated with ``If-Match`` on its ETag. Two writers of one model
therefore never both commit: the loser's transaction fails as a whole and is
re-read and retried here (or reported as ``ConcurrencyConflict`` when the alias it
wanted to move has moved). Row keys are described in :mod:`._table_rows`.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode

from modelpilot.adapters.azure import _table_rows as rows
from modelpilot.adapters.azure._errors import RETRYABLE_STATUS, azure_errors
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
    PayloadTooLarge,
    TransientError,
    UnknownModel,
    UnknownVersion,
)
from modelpilot.ports import RegistryStore, stale_canary

if TYPE_CHECKING:
    from datetime import datetime

    from azure.data.tables import TableClient

    from modelpilot.ports import CanarySave

__all__ = ["TableRegistry"]

Op = tuple[Any, ...]
#: the partition of the outbox watermarks (not a valid model name, so never a model's partition)
OUTBOX_PARTITION = "_outbox"


def _first_line(message: str) -> str:
    """The service's message without the transaction index prefix (``0:``) and the request details."""
    line = (message or "").strip().splitlines()[0] if message else "bad request"
    return line.split(":", 1)[1].strip() if line[:1].isdigit() and ":" in line else line


def _if_match(etag: str) -> dict[str, Any]:
    """Options of a transaction update that only applies while the row still has ``etag``."""
    return {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}


class TableRegistry(RegistryStore):
    """A :class:`RegistryStore` in one Azure Storage table.

    Parameters
    ----------
    table:
        A ``TableClient`` (credential or connection string injected by the caller).
    attempts:
        How often a transaction that lost a race on the audit head is retried.
    """

    def __init__(self, table: TableClient, *, attempts: int = 40) -> None:
        self.table = table
        self.attempts = attempts

    # -- plumbing --------------------------------------------------------------------
    def _get(self, model: str, row: str) -> dict[str, Any] | None:
        """Point-read one row; the entity's ETag is returned under ``_etag``."""
        try:
            with azure_errors("registry read"):
                entity = self.table.get_entity(model, row)
        except ResourceNotFoundError:
            return None
        data = dict(entity)
        data["_etag"] = entity.metadata["etag"]
        return data

    def _range(self, model: str, prefix: str) -> list[dict[str, Any]]:
        """Return every row of ``model`` whose key starts with ``prefix``, in key order."""
        low, high = rows.prefix_range(prefix)
        with azure_errors("registry query"):
            return [
                dict(e)
                for e in self.table.query_entities(
                    "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                    parameters={"pk": model, "lo": low, "hi": high},
                )
            ]

    def _submit(self, ops: list[Op]) -> bool:
        """Commit ``ops`` atomically; return False when a precondition failed (a lost race)."""
        try:
            with azure_errors("registry transaction"):
                self.table.submit_transaction(ops)
        except TableTransactionError as exc:
            if exc.status_code in RETRYABLE_STATUS:
                raise TransientError(f"registry transaction failed ({exc.status_code}); retry later") from exc
            if exc.status_code in (409, 412):
                return False
            if exc.status_code == 400:
                raise InvalidInput(f"the registry table refused the change: {_first_line(exc.message)}") from None
            if exc.status_code == 413:
                raise PayloadTooLarge(
                    "the change is larger than Table Storage accepts (a property holds 64 KiB, an entity 1 MiB); "
                    "shorten the reason or comment"
                ) from None
            raise
        return True

    def _audit_ops(
        self, model: str, entries: list[AuditEntry], *, versions_added: int = 0
    ) -> tuple[list[Op], list[AuditRecord]]:
        """Return the ops that append ``entries`` after the current head (META If-Match)."""
        meta = self._get(model, rows.META)
        seq = int(meta["seq"]) if meta else 0
        prev = str(meta["head"]) if meta else GENESIS
        versions = int(meta["versions"]) if meta else 0
        ops: list[Op] = []
        records: list[AuditRecord] = []
        for entry in entries:
            seq += 1
            record = seal(entry, seq=seq, prev_hash=prev)
            prev = record.hash
            records.append(record)
            ops.append(("create", rows.to_audit(record)))
        head = {
            "PartitionKey": model,
            "RowKey": rows.META,
            "seq": seq,
            "head": prev,
            "versions": versions + versions_added,
        }
        if meta is None:
            ops.append(("create", head))
        else:
            ops.append(("update", head, _if_match(meta["_etag"])))
        return ops, records

    def _version_count(self, model: str) -> int:
        meta = self._get(model, rows.META)
        return int(meta["versions"]) if meta else 0

    def _backoff(self, attempt: int) -> None:
        time.sleep(random.uniform(0, min(0.2, 0.01 * (attempt + 1))))

    def _retry_exhausted(self, model: str) -> ConcurrencyConflict:
        return ConcurrencyConflict(f"{model}: too many concurrent writers; try again", model=model)

    # -- versions ------------------------------------------------------------------
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
        model = manifest.name
        tried = False
        for attempt in range(self.attempts):
            existing = self.find_version(model, manifest_digest=manifest_digest)
            if existing is not None:
                # our own earlier attempt committed though its answer was lost (an SDK retry then saw 409)
                ours = tried and (existing.registered_at, existing.registered_by, existing.package_uri) == (
                    registered_at,
                    registered_by,
                    package_uri,
                )
                return existing, ours
            number = self._version_count(model) + 1
            version = ModelVersion(
                model,
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
            ops, _ = self._audit_ops(model, [replace(audit, to_version=number)], versions_added=1)
            if int(ops[-1][1]["versions"]) != number:
                continue  # the head moved between the two reads
            tried = True
            if self._submit([("create", rows.to_version(version)), *ops]):
                return version, True
            self._backoff(attempt)
        raise self._retry_exhausted(model)

    def get_version(self, model: str, version: int) -> ModelVersion:
        entity = self._get(model, rows.version_key(version))
        if entity is not None:
            return rows.from_version(entity)
        if self._version_count(model) == 0:
            raise UnknownModel(f"unknown model {model!r}", model=model)
        raise UnknownVersion(f"{model} has no version {version}", model=model, version=version)

    def find_version(
        self, model: str, *, manifest_digest: str | None = None, external_id: str | None = None
    ) -> ModelVersion | None:
        if manifest_digest is not None:
            field, value = "manifest_digest", manifest_digest
        elif external_id is not None:
            field, value = "external_id", external_id
        else:
            return None
        low, high = rows.prefix_range("VERSION:")
        with azure_errors("registry query"):
            found = list(
                self.table.query_entities(
                    f"PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and {field} eq @v",
                    parameters={"pk": model, "lo": low, "hi": high, "v": value},
                )
            )
        return rows.from_version(dict(found[0])) if found else None

    def list_versions(self, model: str) -> list[ModelVersion]:
        return [rows.from_version(e) for e in self._range(model, "VERSION:")]

    def list_models(self) -> list[str]:
        with azure_errors("registry query"):
            metas = self.table.query_entities(
                "RowKey eq @meta and versions gt 0", parameters={"meta": rows.META}, select=["PartitionKey"]
            )
            return sorted({str(e["PartitionKey"]) for e in metas})

    def set_version_status(self, model: str, version: int, status: VersionStatus, audit: AuditEntry) -> bool:
        for attempt in range(self.attempts):
            entity = self._get(model, rows.version_key(version))
            if entity is None:
                raise UnknownVersion(f"{model} has no version {version}", model=model, version=version)
            if entity["status"] == status:
                return False
            etag = entity.pop("_etag")
            entity["status"] = status
            ops, _ = self._audit_ops(model, [audit])
            update = ("update", entity, _if_match(etag))
            if self._submit([update, *ops]):
                return True
            self._backoff(attempt)
        raise self._retry_exhausted(model)

    # -- aliases ---------------------------------------------------------------------
    def get_alias(self, model: str, environment: str) -> Alias | None:
        entity = self._get(model, rows.alias_key(environment))
        return rows.from_alias(entity) if entity else None

    def move_alias(
        self, *, change: AliasChange, expected_revision: int, audit: AuditEntry, canary: CanarySave | None = None
    ) -> Alias:
        if change.revision != expected_revision + 1:
            raise ValueError("change.revision must be expected_revision + 1")
        model, env = change.model, change.environment
        alias = Alias(model, env, change.to_version, change.revision, change.at, change.actor)
        for attempt in range(self.attempts):
            current = self._get(model, rows.alias_key(env))
            revision = int(current["revision"]) if current else 0
            found = self._get(model, rows.canary_key(env)) if canary is not None else None
            stored = rows.from_canary(found) if found else None
            canary_ok = canary is None or replaceable(stored, canary.canary, canary.expected_revision)
            if revision != expected_revision or not canary_ok:
                done = self._get(model, rows.hist_key(env, change.revision))
                if (
                    current is not None
                    and done is not None
                    and rows.from_change(done) == change
                    and (canary is None or stored == canary.canary)
                ):
                    return rows.from_alias(current)
                if revision == expected_revision and canary is not None:
                    raise stale_canary(stored, canary.canary, canary.expected_revision)
                raise ConcurrencyConflict(
                    f"{model} {env} is at revision {revision}, expected {expected_revision}",
                    model=model,
                    environment=env,
                )
            if current is None:
                alias_op: Op = ("create", rows.to_alias(alias))
            else:
                alias_op = ("update", rows.to_alias(alias), _if_match(current["_etag"]))
            batch = [alias_op, ("create", rows.to_change(change))]
            entries = [audit]
            if canary is not None:
                batch.append(_canary_op(canary.canary, found))
                entries.append(canary.audit)
            ops, _ = self._audit_ops(model, entries)
            if self._submit([*batch, *ops]):
                return alias
            self._backoff(attempt)
        raise self._retry_exhausted(model)

    def alias_history(self, model: str, environment: str) -> list[AliasChange]:
        return [rows.from_change(e) for e in self._range(model, f"HIST:{environment}:")]

    # -- canaries --------------------------------------------------------------------
    def get_canary(self, model: str, environment: str) -> Canary | None:
        entity = self._get(model, rows.canary_key(environment))
        return rows.from_canary(entity) if entity else None

    def save_canary(self, canary: Canary, *, expected_revision: int, audit: AuditEntry) -> Canary:
        model, env = canary.model, canary.environment
        for attempt in range(self.attempts):
            found = self._get(model, rows.canary_key(env))
            current = rows.from_canary(found) if found else None
            if not replaceable(current, canary, expected_revision):
                if current is not None and current == canary:
                    return current  # a retry of a save that committed
                raise stale_canary(current, canary, expected_revision)
            ops, _ = self._audit_ops(model, [audit])
            # a lost race (the canary or the audit head moved) reads again
            if self._submit([_canary_op(canary, found), *ops]):
                return canary
            self._backoff(attempt)
        raise self._retry_exhausted(model)

    def list_canaries(self, *, active_only: bool = True) -> list[Canary]:
        low, high = rows.prefix_range("CANARY:")
        query = "RowKey ge @lo and RowKey lt @hi"
        if active_only:
            query += " and (state eq 'running' or state eq 'paused')"
        with azure_errors("registry query"):
            found = self.table.query_entities(query, parameters={"lo": low, "hi": high})
            canaries = [rows.from_canary(dict(e)) for e in found]
        return sorted(canaries, key=lambda c: (c.model, c.environment))

    # -- approvals -------------------------------------------------------------------
    def add_approval(self, approval: Approval, audit: AuditEntry) -> bool:
        key = rows.approval_key(approval.version, approval.environment, approval.approver)
        tried = False
        for attempt in range(self.attempts):
            found = self._get(approval.model, key)
            if found is not None:
                return tried and rows.from_approval(found) == approval  # our lost-answer commit, or another's
            ops, _ = self._audit_ops(approval.model, [audit])
            tried = True
            if self._submit([("create", rows.to_approval(approval)), *ops]):
                return True
            self._backoff(attempt)
        raise self._retry_exhausted(approval.model)

    def list_approvals(self, model: str, version: int, environment: str) -> list[Approval]:
        found = [rows.from_approval(e) for e in self._range(model, f"APPROVAL:{version:010d}:{environment}:")]
        return sorted(found, key=lambda a: (a.at, a.approver))

    # -- audit -----------------------------------------------------------------------
    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        for attempt in range(self.attempts):
            ops, records = self._audit_ops(entry.model, [entry])
            if self._submit(ops):
                return records[0]
            self._backoff(attempt)
        raise self._retry_exhausted(entry.model)

    def audit_records(self, model: str) -> list[AuditRecord]:
        return [rows.from_audit(e) for e in self._range(model, "AUDIT:")]

    def audit_heads(self) -> dict[str, AuditHead]:
        with azure_errors("registry query"):
            metas = self.table.query_entities(
                "RowKey eq @meta", parameters={"meta": rows.META}, select=["PartitionKey", "seq", "head"]
            )
            return {str(e["PartitionKey"]): AuditHead(int(e["seq"]), str(e["head"])) for e in metas if e.get("head")}

    def adopt_audit_head(self, model: str, head: AuditHead) -> bool:
        return False  # the META row has carried the head since the first record: never missing but by tampering

    # -- outbox: one row per model in the OUTBOX_PARTITION (RowKey = model, ``published``) ------
    supports_outbox = True

    def audit_head(self, model: str) -> AuditHead | None:
        meta = self._get(model, rows.META)
        return AuditHead(int(meta["seq"]), str(meta["head"])) if meta and meta.get("head") else None

    def audit_records_after(self, model: str, seq: int) -> list[AuditRecord]:
        low, high = rows.audit_key(seq + 1), rows.prefix_range("AUDIT:")[1]
        with azure_errors("registry query"):
            found = self.table.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                parameters={"pk": model, "lo": low, "hi": high},
            )
            return [rows.from_audit(dict(e)) for e in found]

    def outbox_watermark(self, model: str) -> int | None:
        row = self._get(OUTBOX_PARTITION, model)
        return int(row["published"]) if row else None

    def advance_outbox_watermark(self, model: str, seq: int) -> bool:
        entity = {"PartitionKey": OUTBOX_PARTITION, "RowKey": model, "published": seq}
        for attempt in range(self.attempts):
            row = self._get(OUTBOX_PARTITION, model)
            if row is not None and int(row["published"]) >= seq:
                return False
            op: Op = ("create", entity) if row is None else ("update", entity, _if_match(row["_etag"]))
            if self._submit([op]):  # a lost race (409 on create, 412 on update) reads again
                return True
            self._backoff(attempt)
        raise self._retry_exhausted(model)

    def audited_models(self) -> list[str]:
        low, high = rows.prefix_range("AUDIT:")
        with azure_errors("registry query"):
            found = self.table.query_entities(
                "RowKey ge @lo and RowKey lt @hi", parameters={"lo": low, "hi": high}, select=["PartitionKey"]
            )
            return sorted({str(e["PartitionKey"]) for e in found})

    # -- monitor status ----------------------------------------------------------------
    def put_monitor_status(self, status: MonitorStatus) -> None:
        with azure_errors("registry write"):
            self.table.upsert_entity(rows.to_status(status), mode=UpdateMode.REPLACE)

    def get_monitor_status(self, model: str, environment: str, kind: MonitorKind) -> MonitorStatus | None:
        entity = self._get(model, rows.monitor_key(environment, kind))
        return rows.from_status(entity) if entity else None

    def list_monitor_status(self, model: str) -> list[MonitorStatus]:
        return [rows.from_status(e) for e in self._range(model, "MONITOR:")]


def _canary_op(canary: Canary, found: dict[str, Any] | None) -> Op:
    """Create the canary's row, or replace the one read (``found``) only while its ETag still matches."""
    if found is None:
        return ("create", rows.to_canary(canary))
    return ("update", rows.to_canary(canary), _if_match(found["_etag"]))
