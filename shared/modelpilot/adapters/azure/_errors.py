"""Translate azure-core exceptions into ModelPilot's typed errors."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from modelpilot.exceptions import NotAuthorized, TransientError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["RETRYABLE_STATUS", "azure_errors"]

#: HTTP statuses worth a platform retry (throttling, server errors, timeouts)
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@contextmanager
def azure_errors(what: str) -> Iterator[None]:
    """Turn transport failures, throttling and server errors of ``what`` into typed errors.

    Errors a caller handles itself (not found, precondition failed, conflict)
    pass through unchanged.
    """
    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise TransientError(f"{what}: Azure Storage is unreachable ({type(exc).__name__})") from exc
    except ClientAuthenticationError as exc:
        raise NotAuthorized(f"{what}: the identity may not access this resource ({exc.reason})") from exc
    except HttpResponseError as exc:
        if exc.status_code in RETRYABLE_STATUS:
            raise TransientError(
                f"{what}: Azure answered {exc.status_code} ({exc.reason}); retry later", status=exc.status_code
            ) from exc
        raise
