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

    def _audit_write(self, entry: AuditEntry) -> tuple[Item, AuditRecord]:
        last = self._query(items.model_pk(entry.model), "AUDIT#", newest_first=True, limit=1)
        seq, prev = (1, GENESIS)
        if last:
            record = items.decode_record(last[0])
            seq, prev = record.seq + 1, record.hash
        sealed = seal(entry, seq=seq, prev_hash=prev)
        item = {**items.key(entry.model, items.audit_key(seq)), "doc": items.doc(sealed.to_dict())}
        return self._put(item), sealed
