"""Low-level DynamoDB calls of the registry: typed errors, consistent reads, paged queries, transactions.

Kept apart from :mod:`modelpilot.adapters.aws.registry` so the registry reads as
its entity logic; every botocore failure leaves here as a typed error.
"""

from __future__ import annotations

import random
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot.adapters.aws import _registry_items as items
from modelpilot.adapters.aws._errors import error_code, translate
from modelpilot.domain.audit import GENESIS, AuditEntry, AuditRecord, seal

__all__ = ["TableOps"]

Item = dict[str, Any]


class TableOps:
    """DynamoDB operations on one table; ``table`` and ``client`` are set by the subclass."""

    table: str
    client: Any

    def _call(self, what: str, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"DynamoDB {what} on {self.table}") from exc

    def _get(self, model: str, sort_key: str) -> Item | None:
        found: Item | None = self._call(
            "GetItem", "get_item", TableName=self.table, Key=items.key(model, sort_key), ConsistentRead=True
        ).get("Item")
        return found

    def _query(self, pk: str, prefix: str, *, newest_first: bool = False, limit: int | None = None) -> list[Item]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "ScanIndexForward": not newest_first,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
        }
        if limit is not None:
            kwargs["Limit"] = limit
        found: list[Item] = []
        while True:
            page = self._call("Query", "query", **kwargs)
            found.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page or (limit is not None and len(found) >= limit):
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _transact(self, what: str, writes: list[Item]) -> list[str] | None:
        """Run one transaction; return None when it committed, else the cancellation reason codes."""
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc, f"DynamoDB {what} on {self.table}") from exc
            reasons = exc.response.get("CancellationReasons") or [{}] * len(writes)
            return [str(r.get("Code") or "None") for r in reasons]
        except BotoCoreError as exc:
            raise translate(exc, f"DynamoDB {what} on {self.table}") from exc
        return None

    def _backoff(self, attempt: int) -> None:
        time.sleep(random.uniform(0.002, 0.01) * min(attempt + 1, 8))

    def _put(self, item: Item, condition: str | None = "attribute_not_exists(sk)") -> Item:
        put: Item = {"TableName": self.table, "Item": item}
        if condition:
            put["ConditionExpression"] = condition
        return {"Put": put}

    def _audit_write(self, entry: AuditEntry) -> tuple[list[Item], AuditRecord]:
        """Return the writes that append ``entry``: the record (if absent) and the head moved from its seq."""
        writes, records = self._audit_writes([entry])
        return writes, records[0]

    def _audit_writes(self, entries: list[AuditEntry]) -> tuple[list[Item], list[AuditRecord]]:
        """Return the writes that append ``entries`` (one model's, in order) and move the head once past them."""
        model = entries[0].model
        last = self._query(items.model_pk(model), "AUDIT#", newest_first=True, limit=1)
        seq, prev = (1, GENESIS)
        if last:
            record = items.decode_record(last[0])
            seq, prev = record.seq + 1, record.hash
        first = seq
        writes: list[Item] = []
        records: list[AuditRecord] = []
        for entry in entries:
            sealed = seal(entry, seq=seq, prev_hash=prev)
            writes.append(self._put({**items.key(model, items.audit_key(seq)), "doc": items.doc(sealed.to_dict())}))
            records.append(sealed)
            seq, prev = seq + 1, sealed.hash
        head = {
            "Update": {
                "TableName": self.table,
                "Key": items.head_key(model),
                "UpdateExpression": "SET seq = :seq, head = :hash",
                "ConditionExpression": "attribute_not_exists(seq) OR seq = :prev",
                "ExpressionAttributeValues": {
                    ":seq": {"N": str(seq - 1)},
                    ":hash": {"S": prev},
                    ":prev": {"N": str(first - 1)},
                },
            }
        }
        return [*writes, head], records

    def _scan_models(self, prefix: str) -> list[str]:
        """Return the models with at least one item whose sort key starts with ``prefix`` (a paged scan)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "FilterExpression": "begins_with(sk, :prefix) AND begins_with(pk, :model)",
            "ExpressionAttributeValues": {":prefix": {"S": prefix}, ":model": {"S": "MODEL#"}},
            "ProjectionExpression": "pk",
        }
        found: set[str] = set()
        while True:
            page = self._call("Scan", "scan", **kwargs)
            found.update(i["pk"]["S"].removeprefix("MODEL#") for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return sorted(found)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
