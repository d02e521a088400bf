"""Row keys and entity (de)serialisation of the Table Storage registry.

PartitionKey is the model name, so every row of a model can take part in one
entity-group transaction. Row keys mirror the DynamoDB design with ``:`` as the
separator, because Azure Table keys may not contain ``#``, ``/``, ``\\`` or ``?``::

    META                          audit head (seq, hash) and version count; every write If-Matches it
    VERSION:<version 10 digits>   a registered version
    ALIAS:<env>                   where the environment's alias points (If-Match on its ETag)
    HIST:<env>:<revision>         one move of the alias
    APPROVAL:<version>:<env>:<approver hex>
    AUDIT:<seq 10 digits>         one sealed audit record
    MONITOR:<env>:<kind>          the latest monitor verdict
    CANARY:<env>                  the latest canary (``doc`` JSON, ``state``, ``revision``; If-Match on its ETag)

Optional values are left out of the entity (tables store no nulls); times are
ISO-8601 strings so they round-trip exactly.

A property holds at most 64 KiB, so a version's manifest is kept as a string only
when it is short; a longer one is zlib-compressed and split over binary properties
``manifest_z0``, ``manifest_z1``… (``manifest_parts`` says how many). The entity
itself holds at most 1 MiB: a manifest that does not fit compressed is refused.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Any

from modelpilot.domain.audit import AuditRecord
from modelpilot.domain.canary import Canary
from modelpilot.domain.model import Alias, AliasChange, Approval, Manifest, ModelVersion, MonitorStatus
from modelpilot.exceptions import PackageError

__all__ = [
    "META",
    "alias_key",
    "approval_key",
    "audit_key",
    "canary_key",
    "from_alias",
    "from_approval",
    "from_audit",
    "from_canary",
    "from_change",
    "from_status",
    "from_version",
    "hist_key",
    "monitor_key",
    "prefix_range",
    "to_alias",
    "to_approval",
    "to_audit",
    "to_canary",
    "to_change",
    "to_status",
    "to_version",
    "version_key",
]

META = "META"
#: a string property holds 64 KiB of UTF-16: 16,000 characters fit whatever they are
MAX_INLINE_MANIFEST_CHARS = 16_000
#: one binary property's share of a compressed manifest (the limit is 65,536 bytes)
MANIFEST_PART_BYTES = 60_000
#: the compressed manifest's share of the 1 MiB entity
MAX_COMPRESSED_MANIFEST_BYTES = 14 * MANIFEST_PART_BYTES


def _num(n: int) -> str:
    return f"{n:010d}"


def version_key(version: int) -> str:
    """Row key of a version."""
    return f"VERSION:{_num(version)}"


def alias_key(environment: str) -> str:
    """Row key of an environment's alias."""
    return f"ALIAS:{environment}"


def hist_key(environment: str, revision: int) -> str:
    """Row key of one alias move."""
    return f"HIST:{environment}:{_num(revision)}"


def approval_key(version: int, environment: str, approver: str) -> str:
    """Row key of an approval; the approver is hex-encoded (it may hold forbidden characters)."""
    return f"APPROVAL:{_num(version)}:{environment}:{approver.encode().hex()}"


def audit_key(seq: int) -> str:
    """Row key of an audit record."""
    return f"AUDIT:{_num(seq)}"


def monitor_key(environment: str, kind: str) -> str:
    """Row key of a monitor verdict."""
    return f"MONITOR:{environment}:{kind}"


def prefix_range(prefix: str) -> tuple[str, str]:
    """Return ``(low, high)`` row keys bounding every key that starts with ``prefix``."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _put(entity: dict[str, Any], **values: Any) -> dict[str, Any]:
    entity.update({k: v for k, v in values.items() if v is not None})
    return entity


def _base(model: str, row: str) -> dict[str, Any]:
    return {"PartitionKey": model, "RowKey": row}


def _manifest_properties(manifest: Manifest) -> dict[str, Any]:
    text = json.dumps(manifest.to_dict(), sort_keys=True)
    if len(text) <= MAX_INLINE_MANIFEST_CHARS:
        return {"manifest": text}
    packed = zlib.compress(text.encode("utf-8"), 9)
    if len(packed) > MAX_COMPRESSED_MANIFEST_BYTES:
        raise PackageError(
            f"the manifest of {manifest.name} is {len(text.encode('utf-8'))} bytes and {len(packed)} compressed, "
            f"more than the {MAX_COMPRESSED_MANIFEST_BYTES} bytes a Table Storage entity can hold; "
            "shorten its descriptions or feature lists",
            model=manifest.name,
        )
    parts = [packed[i : i + MANIFEST_PART_BYTES] for i in range(0, len(packed), MANIFEST_PART_BYTES)]
    return {"manifest_parts": len(parts), **{f"manifest_z{i}": part for i, part in enumerate(parts)}}


def _manifest_of(e: dict[str, Any]) -> Manifest:
    if "manifest" in e:
        return Manifest.from_dict(json.loads(e["manifest"]))
    packed = b"".join(bytes(e[f"manifest_z{i}"]) for i in range(int(e["manifest_parts"])))
    return Manifest.from_dict(json.loads(zlib.decompress(packed)))


def to_version(v: ModelVersion) -> dict[str, Any]:
    """Entity of a version (a long manifest compressed over several properties)."""
    return _put(
        _base(v.model, version_key(v.version)),
        version=v.version,
        manifest_digest=v.manifest_digest,
        **_manifest_properties(v.manifest),
        package_uri=v.package_uri,
        registered_by=v.registered_by,
        registered_at=v.registered_at.isoformat(),
        status=v.status,
        source=v.source,
        external_id=v.external_id,
    )


def from_version(e: dict[str, Any]) -> ModelVersion:
    """Version of an entity."""
    return ModelVersion(
        model=e["PartitionKey"],
        version=int(e["version"]),
        manifest_digest=e["manifest_digest"],
        manifest=_manifest_of(e),
        package_uri=e["package_uri"],
        registered_by=e["registered_by"],
        registered_at=datetime.fromisoformat(e["registered_at"]),
        status=e["status"],
        source=e["source"],
        external_id=e.get("external_id"),
    )


def to_alias(a: Alias) -> dict[str, Any]:
    """Entity of an alias."""
    return _put(
        _base(a.model, alias_key(a.environment)),
        environment=a.environment,
        version=a.version,
        revision=a.revision,
        updated_at=a.updated_at.isoformat(),
        updated_by=a.updated_by,
    )


def from_alias(e: dict[str, Any]) -> Alias:
    """Alias of an entity."""
    return Alias(
        e["PartitionKey"],
        e["environment"],
        int(e["version"]),
        int(e["revision"]),
        datetime.fromisoformat(e["updated_at"]),
        e["updated_by"],
    )


def to_change(c: AliasChange) -> dict[str, Any]:
    """Entity of an alias move."""
    return _put(
        _base(c.model, hist_key(c.environment, c.revision)),
        environment=c.environment,
        revision=c.revision,
        from_version=c.from_version,
        to_version=c.to_version,
        action=c.action,
        actor=c.actor,
        reason=c.reason,
        at=c.at.isoformat(),
        trigger=c.trigger,
    )


def from_change(e: dict[str, Any]) -> AliasChange:
    """Alias move of an entity."""
    frm = e.get("from_version")
    return AliasChange(
        model=e["PartitionKey"],
        environment=e["environment"],
        revision=int(e["revision"]),
        from_version=int(frm) if frm is not None else None,
        to_version=int(e["to_version"]),
        action=e["action"],
        actor=e["actor"],
        reason=e["reason"],
        at=datetime.fromisoformat(e["at"]),
        trigger=e.get("trigger"),
    )


def to_approval(a: Approval) -> dict[str, Any]:
    """Entity of an approval."""
    return _put(
        _base(a.model, approval_key(a.version, a.environment, a.approver)),
        version=a.version,
        environment=a.environment,
        approver=a.approver,
        at=a.at.isoformat(),
        comment=a.comment,
    )


def from_approval(e: dict[str, Any]) -> Approval:
    """Approval of an entity."""
    return Approval(
        e["PartitionKey"],
        int(e["version"]),
        e["environment"],
        e["approver"],
        datetime.fromisoformat(e["at"]),
        e.get("comment", ""),
    )


def to_audit(r: AuditRecord) -> dict[str, Any]:
    """Entity of a sealed audit record."""
    return _put(
        _base(r.model, audit_key(r.seq)),
        seq=r.seq,
        actor=r.actor,
        action=r.action,
        timestamp=r.timestamp.isoformat(),
        environment=r.environment,
        from_version=r.from_version,
        to_version=r.to_version,
        reason=r.reason,
        gate_report_digest=r.gate_report_digest,
        trigger=r.trigger,
        evidence=json.dumps(r.evidence, sort_keys=True),
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def from_audit(e: dict[str, Any]) -> AuditRecord:
    """Audit record of an entity, exactly as stored."""
    return AuditRecord(
        model=e["PartitionKey"],
        seq=int(e["seq"]),
        actor=e["actor"],
        action=e["action"],
        timestamp=datetime.fromisoformat(e["timestamp"]),
        environment=e.get("environment"),
        from_version=_opt_int(e.get("from_version")),
        to_version=_opt_int(e.get("to_version")),
        reason=e.get("reason", ""),
        gate_report_digest=e.get("gate_report_digest"),
        trigger=e.get("trigger"),
        evidence=json.loads(e["evidence"]),
        prev_hash=e["prev_hash"],
        hash=e["hash"],
    )


def to_status(s: MonitorStatus) -> dict[str, Any]:
    """Entity of a monitor verdict."""
    return _put(
        _base(s.model, monitor_key(s.environment, s.kind)),
        environment=s.environment,
        kind=s.kind,
        state=s.state,
        version=s.version,
        updated_at=s.updated_at.isoformat(),
        summary=s.summary,
        details=json.dumps(s.details, default=str, sort_keys=True),
    )


def from_status(e: dict[str, Any]) -> MonitorStatus:
    """Monitor verdict of an entity."""
    return MonitorStatus(
        e["PartitionKey"],
        e["environment"],
        e["kind"],
        e["state"],
        _opt_int(e.get("version")),
        datetime.fromisoformat(e["updated_at"]),
        e.get("summary", ""),
        json.loads(e["details"]),
    )


def canary_key(environment: str) -> str:
    """Row key of an environment's canary."""
    return f"CANARY:{environment}"


def to_canary(c: Canary) -> dict[str, Any]:
    """Entity of a canary."""
    return _put(
        _base(c.model, canary_key(c.environment)),
        state=c.state,
        revision=c.revision,
        doc=json.dumps(c.to_dict(), sort_keys=True, default=str),
    )


def from_canary(e: dict[str, Any]) -> Canary:
    """Canary of an entity."""
    return Canary.from_dict(json.loads(e["doc"]))
