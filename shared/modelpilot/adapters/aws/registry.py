"""DynamoDB registry: the single-table design of ``_registry_items``, one partition per model.

Every state change commits with its audit record in one ``TransactWriteItems``.
Audit records are chained by sequence: the transaction puts ``AUDIT#<seq+1>`` on
the condition that it does not exist yet and moves the model's chain head from
``seq`` to ``seq+1`` (conditionally), so two writers never both extend the chain
from the same record and a record deleted from the end leaves a head past it.
Version numbers come from a conditional counter; alias moves are a compare-and-set on the alias revision. moto ignores
``ClientRequestToken``, so a retried move whose condition fails is checked
against the alias history: if the history already holds exactly this change,
the retry is a success.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot.adapters.aws import _registry_items as items
from modelpilot.adapters.aws._errors import error_code, translate
from modelpilot.adapters.aws._table import TableOps
from modelpilot.domain.audit import AuditHead
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
from modelpilot.exceptions import ConcurrencyConflict, UnknownModel, UnknownVersion
from modelpilot.ports import RegistryStore, stale_canary

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.audit import AuditEntry, AuditRecord
    from modelpilot.ports import CanarySave

__all__ = ["DynamoDbRegistry"]

_FAILED = "ConditionalCheckFailed"
Item = dict[str, Any]


class DynamoDbRegistry(TableOps, RegistryStore):
    """A :class:`RegistryStore` in one DynamoDB table (``pk``/``sk`` strings).

    Parameters
    ----------
    table:
        The table name (``!Ref RegistryTable``).
    client:
        A boto3 DynamoDB client (injected; tests pass one bound to moto's server).
    attempts:
        How often a transaction that lost a race on the audit chain or the
        version counter is re-read and retried before ``ConcurrencyConflict``.
    """

    def __init__(self, table: str, client: Any, *, attempts: int = 40) -> None:
        self.table = table
        self.client = client
        self.attempts = attempts

    # -- versions ------------------------------------------------------------------------
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
        for attempt in range(self.attempts):
            existing = self._get(model, items.digest_key(manifest_digest))
            if existing is not None:
                return self.get_version(model, int(existing["version"]["N"])), False
            counter = self._get(model, items.counter_key())
            last = int(counter["last_version"]["N"]) if counter else 0
            number = last + 1
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
            audit_writes, _ = self._audit_write(replace(audit, to_version=number))
            bump = {
                "Update": {
                    "TableName": self.table,
                    "Key": items.key(model, items.counter_key()),
                    "UpdateExpression": "SET last_version = :n",
                    "ConditionExpression": "attribute_not_exists(sk)" if last == 0 else "last_version = :last",
                    "ExpressionAttributeValues": {
                        ":n": {"N": str(number)},
                        **({":last": {"N": str(last)}} if last else {}),
                    },
                }
            }
            digest = {**items.key(model, items.digest_key(manifest_digest)), "version": {"N": str(number)}}
            index = {"pk": {"S": items.MODELS_PK}, "sk": {"S": items.model_pk(model)}}
            reasons = self._transact(
                "register",
                [
                    bump,
                    self._put(items.version_item(version)),
                    self._put(digest),
                    self._put(index, None),
                    *audit_writes,
                ],
            )
            if reasons is None:
                return version, True
            self._backoff(attempt)
        raise ConcurrencyConflict(f"registering {model} kept racing other writers; try again", model=model)

    def get_version(self, model: str, version: int) -> ModelVersion:
        item = self._get(model, items.version_key(version))
        if item is not None:
            return items.decode_version(item)
        if self._get(model, items.counter_key()) is None:
            raise UnknownModel(f"unknown model {model!r}", model=model)
        raise UnknownVersion(f"{model} has no version {version}", model=model, version=version)

    def find_version(
        self, model: str, *, manifest_digest: str | None = None, external_id: str | None = None
    ) -> ModelVersion | None:
        if manifest_digest is not None:
            found = self._get(model, items.digest_key(manifest_digest))
            return self.get_version(model, int(found["version"]["N"])) if found else None
        if external_id is not None:
            return next((v for v in self.list_versions(model) if v.external_id == external_id), None)
        return None

    def list_versions(self, model: str) -> list[ModelVersion]:
        return [items.decode_version(i) for i in self._query(items.model_pk(model), "VERSION#")]

    def list_models(self) -> list[str]:
        return sorted(i["sk"]["S"].removeprefix("MODEL#") for i in self._query(items.MODELS_PK, "MODEL#"))

    def set_version_status(self, model: str, version: int, status: VersionStatus, audit: AuditEntry) -> bool:
        for attempt in range(self.attempts):
            audit_writes, _ = self._audit_write(audit)
            update = {
                "Update": {
                    "TableName": self.table,
                    "Key": items.key(model, items.version_key(version)),
                    "UpdateExpression": "SET #st = :s",
                    "ConditionExpression": "attribute_exists(sk) AND #st <> :s",
                    "ExpressionAttributeNames": {"#st": "status"},
                    "ExpressionAttributeValues": {":s": {"S": status}},
                }
            }
            reasons = self._transact("set status", [update, *audit_writes])
            if reasons is None:
                return True
            if reasons[0] == _FAILED and self.get_version(model, version).status == status:
                return False
            self._backoff(attempt)
        raise ConcurrencyConflict(f"changing {model} v{version} kept racing other writers", model=model)

    # -- aliases -------------------------------------------------------------------------
    def get_alias(self, model: str, environment: str) -> Alias | None:
        item = self._get(model, f"ALIAS#{environment}")
        return items.decode_alias(model, environment, item) if item else None

    def move_alias(
        self, *, change: AliasChange, expected_revision: int, audit: AuditEntry, canary: CanarySave | None = None
    ) -> Alias:
        if change.revision != expected_revision + 1:
            raise ValueError("change.revision must be expected_revision + 1")
        condition = "attribute_not_exists(sk)" if expected_revision == 0 else "revision = :expected"
        alias_put = self._put(items.alias_item(change), condition)
        if expected_revision:
            alias_put["Put"]["ExpressionAttributeValues"] = {":expected": {"N": str(expected_revision)}}
        hist = {
            **items.key(change.model, items.hist_key(change.environment, change.revision)),
            "doc": items.doc(change.to_dict()),
        }
        writes = [alias_put, self._put(hist)]
        entries = [audit]
        if canary is not None:
            writes += self._canary_puts(canary.canary, canary.expected_revision)
            entries.append(canary.audit)
        guarded = 3 if canary is not None else 2  # the alias, its history and (with a canary) the canary
        for attempt in range(self.attempts):
            audit_writes, _ = self._audit_writes(entries)
            reasons = self._transact("move alias", [*writes, *audit_writes])
            if reasons is None:
                return Alias(
                    change.model,
                    change.environment,
                    change.to_version,
                    change.revision,
                    change.at,
                    change.actor,
                )
            if _FAILED in reasons[:guarded]:
                done = self._get(change.model, items.hist_key(change.environment, change.revision))
                current = self.get_alias(change.model, change.environment)
                stored = self.get_canary(change.model, change.environment) if canary is not None else None
                if (
                    done is not None
                    and current is not None
                    and _same(items.decode_change(done), change)
                    and (canary is None or stored == canary.canary)
                ):
                    return current
                if _FAILED not in reasons[:2] and canary is not None:
                    raise stale_canary(stored, canary.canary, canary.expected_revision)
                raise ConcurrencyConflict(
                    f"{change.model} {change.environment} is at revision "
                    f"{current.revision if current else 0}, expected {expected_revision}",
                    model=change.model,
                    environment=change.environment,
                )
            self._backoff(attempt)
        raise ConcurrencyConflict(
            f"{change.model} {change.environment}: audit chain kept moving; try again",
            model=change.model,
            environment=change.environment,
        )

    def alias_history(self, model: str, environment: str) -> list[AliasChange]:
        return [items.decode_change(i) for i in self._query(items.model_pk(model), f"HIST#{environment}#")]

    # -- canaries ------------------------------------------------------------------------
    def get_canary(self, model: str, environment: str) -> Canary | None:
        item = self._get(model, items.canary_key(environment))
        return items.decode_canary(item) if item else None

    def save_canary(self, canary: Canary, *, expected_revision: int, audit: AuditEntry) -> Canary:
        puts = self._canary_puts(canary, expected_revision)
        for attempt in range(self.attempts):
            audit_writes, _ = self._audit_write(audit)
            reasons = self._transact("save canary", [*puts, *audit_writes])
            if reasons is None:
                return canary
            if reasons[0] == _FAILED:
                current = self.get_canary(canary.model, canary.environment)
                if current is not None and current == canary:
                    return current  # a retry of a save that committed
                raise stale_canary(current, canary, expected_revision)
            self._backoff(attempt)
        raise ConcurrencyConflict(
            f"the canary of {canary.model} {canary.environment}: audit chain kept moving; try again",
            model=canary.model,
            environment=canary.environment,
        )

    def _canary_puts(self, canary: Canary, expected_revision: int) -> list[Item]:
        """The conditional put of ``canary`` over the one at ``expected_revision``, and its listing copy."""
        replaceable(None, canary, expected_revision)  # the revision rule (ValueError), before any request
        own, copy = items.canary_items(canary)
        put = self._put(own, None)
        if expected_revision == 0:  # none yet, or a finished one is replaced
            put["Put"]["ConditionExpression"] = "attribute_not_exists(sk) OR NOT (#st IN (:running, :paused))"
            put["Put"]["ExpressionAttributeNames"] = {"#st": "state"}
            put["Put"]["ExpressionAttributeValues"] = {":running": {"S": "running"}, ":paused": {"S": "paused"}}
        else:  # the same canary (start and candidate) at the revision the caller read
            put["Put"]["ConditionExpression"] = "revision = :expected AND started_at = :started AND candidate = :cand"
            put["Put"]["ExpressionAttributeValues"] = {
                ":expected": {"N": str(expected_revision)},
                ":started": {"S": canary.started_at.isoformat()},
                ":cand": {"N": str(canary.candidate_version)},
            }
        return [put, self._put(copy, None)]

    def list_canaries(self, *, active_only: bool = True) -> list[Canary]:
        found = [items.decode_canary(i) for i in self._query(items.CANARIES_PK, "CANARY#")]
        return [c for c in found if c.active or not active_only]

    # -- approvals -----------------------------------------------------------------------
    def add_approval(self, approval: Approval, audit: AuditEntry) -> bool:
        body = {**asdict(approval), "at": approval.at.isoformat()}
        sk = items.approval_key(approval.environment, approval.version, approval.approver)
        put = self._put({**items.key(approval.model, sk), "doc": items.doc(body)})
        for attempt in range(self.attempts):
            audit_writes, _ = self._audit_write(audit)
            reasons = self._transact("add approval", [put, *audit_writes])
            if reasons is None:
                return True
            if reasons[0] == _FAILED:
                return False
            self._backoff(attempt)
        raise ConcurrencyConflict(f"approving {approval.model} kept racing other writers", model=approval.model)

    def list_approvals(self, model: str, version: int, environment: str) -> list[Approval]:
        found = [
            items.decode_approval(i)
            for i in self._query(items.model_pk(model), items.approval_key(environment, version))
        ]
        return sorted(found, key=lambda a: a.at)

    # -- audit ---------------------------------------------------------------------------
    def append_audit(self, entry: AuditEntry) -> AuditRecord:
        for attempt in range(self.attempts):
            audit_writes, record = self._audit_write(entry)
            if self._transact("append audit", audit_writes) is None:
                return record
            self._backoff(attempt)
        raise ConcurrencyConflict(f"audit chain of {entry.model} kept moving; try again", model=entry.model)

    def audit_records(self, model: str) -> list[AuditRecord]:
        return [items.decode_record(i) for i in self._query(items.model_pk(model), "AUDIT#")]

    def audit_heads(self) -> dict[str, AuditHead]:
        return {
            i["sk"]["S"].removeprefix("MODEL#"): AuditHead(int(i["seq"]["N"]), i["head"]["S"])
            for i in self._query(items.HEADS_PK, "MODEL#")
        }

    def adopt_audit_head(self, model: str, head: AuditHead) -> bool:
        item = {**items.head_key(model), "seq": {"N": str(head.seq)}, "head": {"S": head.hash}}
        return self._transact("adopt audit head", [self._put(item)]) is None

    # -- outbox: one item per model in the OUTBOX partition -------------------------------------
    supports_outbox = True

    def audit_head(self, model: str) -> AuditHead | None:
        found: Item | None = self._call(
            "GetItem", "get_item", TableName=self.table, Key=items.head_key(model), ConsistentRead=True
        ).get("Item")
        return AuditHead(int(found["seq"]["N"]), found["head"]["S"]) if found else None

    def audit_records_after(self, model: str, seq: int) -> list[AuditRecord]:
        # records are sorted by a zero-padded seq: read only those above ``seq``
        found: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":pk": {"S": items.model_pk(model)},
                ":low": {"S": items.audit_key(seq + 1)},
                ":high": {"S": "AUDIT#~"},
            },
        }
        while True:
            page = self._call("Query", "query", **kwargs)
            found.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return [items.decode_record(i) for i in found]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def outbox_watermark(self, model: str) -> int | None:
        found: Item | None = self._call(
            "GetItem", "get_item", TableName=self.table, Key=items.outbox_key(model), ConsistentRead=True
        ).get("Item")
        return int(found["published"]["N"]) if found else None

    def advance_outbox_watermark(self, model: str, seq: int) -> bool:
        try:
            self.client.update_item(
                TableName=self.table,
                Key=items.outbox_key(model),
                UpdateExpression="SET published = :seq",
                ConditionExpression="attribute_not_exists(published) OR published < :seq",
                ExpressionAttributeValues={":seq": {"N": str(seq)}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc, f"DynamoDB UpdateItem on {self.table}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"DynamoDB UpdateItem on {self.table}") from exc
        return True

    def audited_models(self) -> list[str]:
        return self._scan_models("AUDIT#")

    # -- monitor status --------------------------------------------------------------------
    def put_monitor_status(self, status: MonitorStatus) -> None:
        item = {
            **items.key(status.model, items.monitor_key(status.environment, status.kind)),
            "doc": items.doc(status.to_dict()),
        }
        self._call("PutItem", "put_item", TableName=self.table, Item=item)

    def get_monitor_status(self, model: str, environment: str, kind: MonitorKind) -> MonitorStatus | None:
        item = self._get(model, items.monitor_key(environment, kind))
        return items.decode_status(item) if item else None

    def list_monitor_status(self, model: str) -> list[MonitorStatus]:
        return [items.decode_status(i) for i in self._query(items.model_pk(model), "MONITOR#")]


def _same(done: AliasChange, change: AliasChange) -> bool:
    return (done.to_version, done.from_version, done.at, done.actor) == (
        change.to_version,
        change.from_version,
        change.at,
        change.actor,
    )
