"""Table Storage idempotency store: one row per business key.

Event Grid retries a delivery up to 30 times over 24 hours and blob triggers
retry too; the entrypoints claim the event's business key here first, so a
redelivery returns the stored result instead of acting twice. A claim is an
insert (it fails when the row exists); taking over an expired claim or
completing is an update with ``If-Match`` on the row's ETag.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from modelpilot.adapters.azure._errors import azure_errors
from modelpilot.exceptions import ConcurrencyConflict
from modelpilot.ports import IdempotencyStore

if TYPE_CHECKING:
    from azure.data.tables import TableClient

__all__ = ["TableIdempotencyStore"]

_PARTITION = "idempotency"


def _row(key: str) -> str:
    """Row key of a business key: its sha256 (keys hold '/', '#' and '?', which tables refuse)."""
    return hashlib.sha256(key.encode()).hexdigest()


class TableIdempotencyStore(IdempotencyStore):
    """An :class:`IdempotencyStore` in one Azure Storage table.

    Rows past ``expires_at`` count as absent; Azure Tables has no TTL, so a
    periodic clean-up (or a lifecycle job) may delete them without harm.
    """

    def __init__(self, table: TableClient) -> None:
        self.table = table

    def _entity(self, key: str, status: str, expires_at: float, result: dict[str, Any] | None = None) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": _PARTITION,
            "RowKey": _row(key),
            "key": key[:1024],
            "status": status,
            "expires_at": float(expires_at),
        }
        if result is not None:
            entity["result"] = json.dumps(result, default=str, sort_keys=True)
        return entity

    def begin(self, key: str, *, lock_seconds: int = 900) -> dict[str, Any] | None:
        now = time.time()
        claim = self._entity(key, "in_progress", now + lock_seconds)
        try:
            with azure_errors("idempotency claim"):
                self.table.create_entity(claim)
            return None
        except ResourceExistsError:
            pass
        try:
            with azure_errors("idempotency read"):
                current = self.table.get_entity(_PARTITION, _row(key))
        except ResourceNotFoundError:  # released in between: claim again
            return self.begin(key, lock_seconds=lock_seconds)
        if float(current["expires_at"]) > now:
            if current["status"] == "completed":
                return dict(json.loads(current["result"]))
            raise ConcurrencyConflict(f"event {key} is being processed by another run", key=key)
        try:
            with azure_errors("idempotency claim"):
                self.table.update_entity(
                    claim,
                    mode=UpdateMode.REPLACE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise ConcurrencyConflict(f"event {key} was claimed by another run", key=key) from None
        return None

    def complete(self, key: str, result: dict[str, Any], *, ttl_seconds: int = 7 * 86400) -> None:
        with azure_errors("idempotency complete"):
            self.table.upsert_entity(
                self._entity(key, "completed", time.time() + ttl_seconds, result), mode=UpdateMode.REPLACE
            )

    def release(self, key: str) -> None:
        try:
            with azure_errors("idempotency release"):
                current = self.table.get_entity(_PARTITION, _row(key))
                if current["status"] != "in_progress":
                    return
                self.table.delete_entity(
                    _PARTITION, _row(key), etag=current.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
        except (ResourceNotFoundError, ResourceModifiedError):
            return
