"""Translate botocore errors into ModelPilot's typed errors (retryable or not)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, EndpointConnectionError
from botocore.parsers import ResponseParserError

from modelpilot.exceptions import ModelPilotError, TransientError

__all__ = ["THROTTLING", "error_code", "translate"]

#: error codes that mean "slow down or try again"; every 5xx is treated the same way
THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "SlowDown",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def error_code(exc: ClientError) -> str:
    """Return the service's error code of a ``ClientError``."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    meta: Any = exc.response.get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode", 0) or 0)


def translate(exc: Exception, what: str) -> ModelPilotError:
    """Return the typed error for a botocore failure while doing ``what``.

    Throttling, 5xx and connection failures become :class:`TransientError` (a
    retry can help); anything else becomes a permanent :class:`ModelPilotError`
    whose message names the operation and the service's error code.
    """
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in THROTTLING or _status(exc) >= 500:
            return TransientError(f"{what}: AWS is throttling or unavailable ({code})", aws_error=code)
        return ModelPilotError(
            f"{what} failed: {code}: {exc.response.get('Error', {}).get('Message', '')}", aws_error=code
        )
    if isinstance(exc, EndpointConnectionError | ConnectionError | BotoCoreError | ResponseParserError):
        # an unreadable reply is an HTTP error page from a failing endpoint: a retry can help
        return TransientError(f"{what}: cannot reach AWS ({type(exc).__name__}: {exc})")
    return ModelPilotError(f"{what} failed: {exc}")
