"""Item codec of the DynamoDB registry table: keys and JSON documents of each entity.

Single-table design, one partition per model (``pk = MODEL#<name>``):

=====================================  ==============================================
sort key                               item
=====================================  ==============================================
``COUNTER``                            ``last_version``: the version counter
``VERSION#<0000000007>``               one version (``doc`` JSON, ``status``)
``DIGEST#<sha256>``                    uniqueness of a manifest digest → ``version``
``ALIAS#<env>``                        where the alias points (``version``, ``revision``)
``HIST#<env>#<0000000003>``            one alias move (``doc`` JSON)
``AUDIT#<000000000012>``               one sealed audit record (``doc`` JSON)
``APPROVAL#<env>#<version>#<who>``     one approval (``doc`` JSON)
``MONITOR#<env>#<kind>``               the latest monitor verdict (``doc`` JSON)
``CANARY#<env>``                       the latest canary (``doc`` JSON, ``state``, ``revision``, ``started_at``,
                                       ``candidate``: what its compare-and-set conditions read)
=====================================  ==============================================

plus one index item per model in the ``MODELS`` partition for ``list_models``, a copy of each
canary in the ``CANARIES`` partition (``CANARY#<model>#<env>``, written in the same transaction) for
``list_canaries``, and one chain head per model in the ``AUDIT_HEADS`` partition (``seq``, ``head``: the last
record's hash), moved in the same transaction as every audit record.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from modelpilot.domain.audit import AuditRecord
from modelpilot.domain.canary import Canary
from modelpilot.domain.model import Alias, AliasChange, Approval, Manifest, ModelVersion, MonitorStatus

__all__ = [
    "CANARIES_PK",
    "HEADS_PK",
    "MODELS_PK",
    "alias_item",
    "approval_key",
    "audit_key",
    "canary_items",
    "canary_key",
    "counter_key",
    "decode_alias",
    "decode_approval",
    "decode_canary",
    "decode_change",
    "decode_record",
    "decode_status",
    "decode_version",
    "digest_key",
    "doc",
    "head_key",
    "hist_key",
    "key",
    "model_pk",
    "monitor_key",
    "outbox_key",
    "version_item",
    "version_key",
]

MODELS_PK = "MODELS"
#: a copy of every canary, for ``list_canaries`` without a scan
CANARIES_PK = "CANARIES"
HEADS_PK = "AUDIT_HEADS"
#: the outbox's "published up to seq" per model (``published``)
OUTBOX_PK = "OUTBOX"
Item = dict[str, Any]


def model_pk(model: str) -> str:
    """Return the partition key of ``model``."""
    return f"MODEL#{model}"


def key(model: str, sort_key: str) -> Item:
    """Return a typed primary key."""
    return {"pk": {"S": model_pk(model)}, "sk": {"S": sort_key}}


def head_key(model: str) -> Item:
    """Return the typed primary key of ``model``'s audit chain head."""
    return {"pk": {"S": HEADS_PK}, "sk": {"S": model_pk(model)}}


def outbox_key(model: str) -> Item:
    """Return the typed primary key of ``model``'s outbox watermark."""
    return {"pk": {"S": OUTBOX_PK}, "sk": {"S": model_pk(model)}}


def counter_key() -> str:
    """Return the sort key of the version counter."""
    return "COUNTER"


def version_key(version: int) -> str:
    """Return the sort key of a version (zero-padded so keys sort numerically)."""
    return f"VERSION#{version:010d}"


def digest_key(digest: str) -> str:
    """Return the sort key that makes a manifest digest unique."""
    return f"DIGEST#{digest}"


def hist_key(environment: str, revision: int) -> str:
    """Return the sort key of one alias move."""
    return f"HIST#{environment}#{revision:010d}"


def audit_key(seq: int) -> str:
    """Return the sort key of one audit record."""
    return f"AUDIT#{seq:012d}"


def approval_key(environment: str, version: int, approver: str = "") -> str:
    """Return the sort key (or, without ``approver``, the prefix) of approvals."""
    return f"APPROVAL#{environment}#{version:010d}#{approver}"


def monitor_key(environment: str, kind: str) -> str:
    """Return the sort key of a monitor verdict."""
    return f"MONITOR#{environment}#{kind}"


def doc(value: dict[str, Any]) -> Item:
    """Return a typed JSON string attribute."""
    return {"S": json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)}


def _load(item: Item) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(item["doc"]["S"])
    return loaded


def version_item(version: ModelVersion) -> Item:
    """Return the item of a version."""
    body = {
        "model": version.model,
        "version": version.version,
        "manifest_digest": version.manifest_digest,
        "manifest": version.manifest.to_dict(),
        "package_uri": version.package_uri,
        "registered_by": version.registered_by,
        "registered_at": version.registered_at.isoformat(),
        "source": version.source,
        "external_id": version.external_id,
    }
    item = {
        **key(version.model, version_key(version.version)),
        "doc": doc(body),
        "status": {"S": version.status},
    }
    if version.external_id is not None:
        item["external_id"] = {"S": version.external_id}
    return item


def decode_version(item: Item) -> ModelVersion:
    """Return the version stored in ``item``."""
    body = _load(item)
    return ModelVersion(
        model=body["model"],
        version=int(body["version"]),
        manifest_digest=body["manifest_digest"],
        manifest=Manifest.from_dict(body["manifest"]),
        package_uri=body["package_uri"],
        registered_by=body["registered_by"],
        registered_at=datetime.fromisoformat(body["registered_at"]),
        status=item["status"]["S"],
        source=body["source"],
        external_id=body.get("external_id"),
    )


def alias_item(change: AliasChange) -> Item:
    """Return the alias item after ``change``."""
    return {
        **key(change.model, f"ALIAS#{change.environment}"),
        "version": {"N": str(change.to_version)},
        "revision": {"N": str(change.revision)},
        "updated_at": {"S": change.at.isoformat()},
        "updated_by": {"S": change.actor},
    }


def decode_alias(model: str, environment: str, item: Item) -> Alias:
    """Return the alias stored in ``item``."""
    return Alias(
        model,
        environment,
        int(item["version"]["N"]),
        int(item["revision"]["N"]),
        datetime.fromisoformat(item["updated_at"]["S"]),
        item["updated_by"]["S"],
    )


def decode_change(item: Item) -> AliasChange:
    """Return the alias move stored in ``item``."""
    body = _load(item)
    body["at"] = datetime.fromisoformat(body["at"])
    return AliasChange(**body)


def decode_record(item: Item) -> AuditRecord:
    """Return the audit record stored in ``item``, exactly as sealed."""
    return AuditRecord.from_dict(_load(item))


def decode_approval(item: Item) -> Approval:
    """Return the approval stored in ``item``."""
    body = _load(item)
    body["at"] = datetime.fromisoformat(body["at"])
    return Approval(**body)


def decode_status(item: Item) -> MonitorStatus:
    """Return the monitor verdict stored in ``item``."""
    body = _load(item)
    body["updated_at"] = datetime.fromisoformat(body["updated_at"])
    return MonitorStatus(**body)


def canary_key(environment: str) -> str:
    """Return the sort key of an environment's canary."""
    return f"CANARY#{environment}"


def canary_items(canary: Canary) -> tuple[Item, Item]:
    """Return the canary's item in its model's partition and its copy in the ``CANARIES`` partition."""
    body = doc(canary.to_dict())
    own = {
        **key(canary.model, canary_key(canary.environment)),
        "doc": body,
        "state": {"S": canary.state},
        "revision": {"N": str(canary.revision)},
        "started_at": {"S": canary.started_at.isoformat()},
        "candidate": {"N": str(canary.candidate_version)},
    }
    copy = {
        "pk": {"S": CANARIES_PK},
        "sk": {"S": f"CANARY#{canary.model}#{canary.environment}"},
        "doc": body,
        "state": {"S": canary.state},
    }
    return own, copy


def decode_canary(item: Item) -> Canary:
    """Return the canary stored in ``item``."""
    return Canary.from_dict(_load(item))
