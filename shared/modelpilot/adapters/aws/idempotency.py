"""The IdempotencyStore port on the stack's idempotency table (the one the Powertools utility uses).

Items live beside the Powertools records under their own key prefix
(``id = "store#<key>"``): ``status`` (``IN_PROGRESS`` / ``COMPLETED``), ``data``
(the JSON result), ``locked_until`` (a claim's deadline, fractional seconds) and
``expiration`` (the table's TTL attribute, whole seconds). A claim is one
conditional ``PutItem``, so two runs never both hold a live claim.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot.adapters.aws._errors import error_code, translate
from modelpilot.exceptions import ConcurrencyConflict
from modelpilot.ports import IdempotencyStore

__all__ = ["DynamoDbIdempotencyStore"]

_CLAIMABLE = "attribute_not_exists(id) OR (#s = :progress AND locked_until <= :now) OR expiration <= :whole"


class DynamoDbIdempotencyStore(IdempotencyStore):
    """An :class:`IdempotencyStore` in DynamoDB (hash key ``id``, TTL attribute ``expiration``).

    Parameters
    ----------
    table:
        The table name (``!Ref IdempotencyTable``).
    client:
        A boto3 DynamoDB client (injected).
    """

    def __init__(self, table: str, client: Any, *, prefix: str = "store#") -> None:
        self.table = table
        self.client = client
        self.prefix = prefix

    def _id(self, key: str) -> dict[str, str]:
        return {"S": self.prefix + key}

    def _call(self, method: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, method)(TableName=self.table, **kwargs)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise
            raise translate(exc, f"DynamoDB {method} on {self.table}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"DynamoDB {method} on {self.table}") from exc

    def begin(self, key: str, *, lock_seconds: int = 900) -> dict[str, Any] | None:
        now = time.time()
        item = {
            "id": self._id(key),
            "status": {"S": "IN_PROGRESS"},
            "locked_until": {"N": repr(now + lock_seconds)},
            "expiration": {"N": str(math.ceil(now + max(lock_seconds, 1)))},
        }
        values = {":progress": {"S": "IN_PROGRESS"}, ":now": {"N": repr(now)}, ":whole": {"N": str(int(now))}}
        try:
            self._call(
                "put_item",
                Item=item,
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
            return None
        except ClientError:
            pass
        found = self._call("get_item", Key={"id": self._id(key)}, ConsistentRead=True).get("Item")
        if found is not None and found["status"]["S"] == "COMPLETED":
            result: dict[str, Any] = json.loads(found["data"]["S"])
            return result
        raise ConcurrencyConflict(f"event {key} is being processed by another run", key=key)

    def complete(self, key: str, result: dict[str, Any], *, ttl_seconds: int = 7 * 86400) -> None:
        item = {
            "id": self._id(key),
            "status": {"S": "COMPLETED"},
            "data": {"S": json.dumps(result, default=str, sort_keys=True)},
            "expiration": {"N": str(math.ceil(time.time() + ttl_seconds))},
        }
        self._call("put_item", Item=item)

    def release(self, key: str) -> None:
        try:
            self._call(
                "delete_item",
                Key={"id": self._id(key)},
                ConditionExpression="#s = :progress",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":progress": {"S": "IN_PROGRESS"}},
            )
        except ClientError:
            return  # completed meanwhile, or never claimed: nothing to release
