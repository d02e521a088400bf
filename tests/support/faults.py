"""Fault injection for the AWS and Azure clients the functions build: fail the nth call, once, with a real error.

AWS: every boto3 client that ``modelpilot.adapters.aws.wiring.client_factory``
builds gets a ``before-call`` hook (the request is never sent) and an
``after-call`` hook (the service did the work, then the reply is lost) on
botocore's event system. Each call the functions make is recorded as
``service.Operation``; when armed, call number ``fail_at`` raises one of the
errors AWS really gives: ``ThrottlingException`` /
``ProvisionedThroughputExceededException`` (HTTP 400), ``InternalServerError``
(500), ``ServiceUnavailable`` (503), ``ReadTimeoutError`` and
``ConnectionClosedError``. The error is raised after botocore's own retries,
as when they are exhausted.

The injector is switchable: unarmed it only counts, so a clean run enumerates
the calls a flow makes and the test then fails each of them in turn.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

#: (kind, phase): phase "before" fails the call unsent, "after" loses the reply of a call the service carried out
AWS_FAULTS: tuple[tuple[str, str], ...] = (
    ("throttling", "before"),
    ("http500", "before"),
    ("http503", "before"),
    ("read_timeout", "after"),
    ("connection_closed", "before"),
    ("read_timeout", "before"),
    ("connection_closed", "after"),
)


def aws_error(kind: str, service: str, operation: str, endpoint: str = "http://127.0.0.1") -> Exception:
    """Return the exception botocore raises for ``kind`` on ``service.operation``."""
    if kind == "throttling":
        code = "ProvisionedThroughputExceededException" if service == "dynamodb" else "ThrottlingException"
        return ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}, **_meta(400)}, operation)
    if kind == "http500":
        return ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "Internal server error"}, **_meta(500)}, operation
        )
    if kind == "http503":
        return ClientError(
            {"Error": {"Code": "ServiceUnavailable", "Message": "Service unavailable"}, **_meta(503)}, operation
        )
    if kind == "read_timeout":
        return ReadTimeoutError(endpoint_url=endpoint)
    if kind == "connection_closed":
        return ConnectionClosedError(endpoint_url=endpoint)
    raise ValueError(f"unknown fault kind {kind!r}")


def _meta(status: int) -> dict[str, Any]:
    return {"ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 3}}


@dataclass
class Injected:
    """One fault raised: the call's index and name, the fault and its phase."""

    index: int
    call: str
    kind: str
    phase: str


@dataclass
class Faults:
    """Counts the calls of the hooked clients; when armed, fails call ``fail_at`` once."""

    calls: list[str] = field(default_factory=list)
    fail_at: int | None = None
    fault: tuple[str, str] = ("throttling", "before")
    injected: list[Injected] = field(default_factory=list)

    def arm(self, index: int, fault: tuple[str, str]) -> None:
        """Fail call ``index`` (counted from now) with ``fault``; every other call passes."""
        self.calls.clear()
        self.fail_at, self.fault = index, fault

    def disarm(self) -> None:
        """Let every call through (still counting)."""
        self.calls.clear()
        self.fail_at = None

    def _hit(self, phase: str, index: int) -> bool:
        return self.fail_at == index and self.fault[1] == phase

    # -- botocore hooks -------------------------------------------------------------------
    def before_call(self, model: Any, **_: Any) -> None:
        name = f"{model.service_model.endpoint_prefix}.{model.name}"
        self.calls.append(name)
        self._raise_if("before", len(self.calls) - 1, model)

    def after_call(self, model: Any, **_: Any) -> None:
        self._raise_if("after", len(self.calls) - 1, model)

    def _raise_if(self, phase: str, index: int, model: Any) -> None:
        if not self._hit(phase, index):
            return
        self.fail_at = None  # once
        self.injected.append(Injected(index, self.calls[index], self.fault[0], phase))
        raise aws_error(self.fault[0], model.service_model.endpoint_prefix, model.name)

    def hook(self, client: Any) -> Any:
        """Register the hooks on ``client`` (once) and return it."""
        client.meta.events.register("before-call", self.before_call, unique_id="modelpilot-faults-before")
        client.meta.events.register("after-call", self.after_call, unique_id="modelpilot-faults-after")
        return client


@contextmanager
def aws_faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    """Hook every client the AWS wiring builds from now on (call ``bootstrap.reset()`` after entering)."""
    from modelpilot.adapters.aws import wiring

    faults = Faults()
    original = wiring.client_factory

    def client_factory(settings: Any) -> Any:
        make = original(settings)

        @functools.cache
        def hooked(service: str) -> Any:
            return faults.hook(make(service))

        return hooked

    monkeypatch.setattr(wiring, "client_factory", client_factory)
    try:
        yield faults
    finally:
        monkeypatch.setattr(wiring, "client_factory", original)
