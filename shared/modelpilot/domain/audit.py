"""The tamper-evident audit log: records, hash chaining and verification.

Each model has its own chain. Record ``seq`` *n* carries ``prev_hash`` = the hash
of record *n-1* (``GENESIS`` for the first) and its own ``hash`` = sha256 over the
canonical JSON of every other field. Altering, removing or reordering any record
breaks the chain at that record, and :func:`verify_chain` names it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from modelpilot.domain.model import canonical_json, sha256_hex

__all__ = ["GENESIS", "AuditEntry", "AuditHead", "AuditRecord", "ChainVerdict", "seal", "verify_chain"]

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEntry:
    """What a state change wants recorded; the store seals it into the chain."""

    model: str
    actor: str
    action: str
    timestamp: datetime
    environment: str | None = None
    from_version: int | None = None
    to_version: int | None = None
    reason: str = ""
    gate_report_digest: str | None = None
    trigger: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditHead:
    """Where a model's chain ends: the last record's ``seq`` and ``hash``.

    Stored with the model's state and moved in the same transaction as every
    append, so deleting records from the end of a chain leaves a head that points
    past it.
    """

    seq: int
    hash: str


@dataclass(frozen=True)
class AuditRecord:
    """A sealed audit record: an entry plus its place and hashes in the chain."""

    model: str
    seq: int
    actor: str
    action: str
    timestamp: datetime
    environment: str | None
    from_version: int | None
    to_version: int | None
    reason: str
    gate_report_digest: str | None
    trigger: str | None
    evidence: dict[str, Any]
    prev_hash: str
    hash: str

    def body(self) -> dict[str, Any]:
        """Return the hashed content: every field except ``hash``."""
        data = asdict(self)
        data.pop("hash")
        data["timestamp"] = self.timestamp.isoformat()
        return data

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view including the hash."""
        data = self.body()
        data["hash"] = self.hash
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AuditRecord:
        """Rebuild a record from :meth:`to_dict` output."""
        values = dict(data)
        values["timestamp"] = datetime.fromisoformat(values["timestamp"])
        values["evidence"] = dict(values.get("evidence") or {})
        return cls(**values)


def compute_hash(body: dict[str, Any]) -> str:
    """Return the chain hash of a record body."""
    return sha256_hex(canonical_json(body))


def seal(entry: AuditEntry, *, seq: int, prev_hash: str) -> AuditRecord:
    """Place ``entry`` in the chain after a record with hash ``prev_hash``."""
    unsealed = AuditRecord(
        model=entry.model,
        seq=seq,
        actor=entry.actor,
        action=entry.action,
        timestamp=entry.timestamp,
        environment=entry.environment,
        from_version=entry.from_version,
        to_version=entry.to_version,
        reason=entry.reason,
        gate_report_digest=entry.gate_report_digest,
        trigger=entry.trigger,
        evidence=dict(entry.evidence),
        prev_hash=prev_hash,
        hash="",
    )
    return AuditRecord(**{**asdict(unsealed), "hash": compute_hash(unsealed.body())})


@dataclass(frozen=True)
class ChainVerdict:
    """The result of verifying one model's chain."""

    model: str
    records: int
    ok: bool
    first_bad_seq: int | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return asdict(self)


def verify_chain(model: str, records: list[AuditRecord]) -> ChainVerdict:
    """Recompute ``model``'s chain and name the first record that does not verify.

    ``records`` must be in storage order (by ``seq``). A gap in ``seq`` means a
    record was removed; a ``prev_hash`` that does not match means a record was
    removed or reordered; a ``hash`` that does not match means it was altered.
    """
    prev = GENESIS
    for expected_seq, record in enumerate(records, start=1):
        if record.model != model:
            return ChainVerdict(model, len(records), False, record.seq, "record belongs to another model")
        if record.seq != expected_seq:
            return ChainVerdict(
                model,
                len(records),
                False,
                record.seq,
                f"sequence gap: expected seq {expected_seq}, found {record.seq} (a record was removed or reordered)",
            )
        if record.prev_hash != prev:
            return ChainVerdict(
                model,
                len(records),
                False,
                record.seq,
                "prev_hash does not match the previous record (a record was removed, inserted or reordered)",
            )
        if compute_hash(record.body()) != record.hash:
            return ChainVerdict(model, len(records), False, record.seq, "hash does not match content (altered)")
        prev = record.hash
    return ChainVerdict(model, len(records), True)
