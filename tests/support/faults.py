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

Azure: the Blob and Table Storage clients the Azure wiring builds (and the Event
Grid and Azure Monitor clients a test builds) send through :class:`FaultTransport`,
an azure-core transport around the real one, with the SDK's retries off
(``retry_total=0``). Each request is recorded as ``<client>.<METHOD>``; when armed,
call number ``fail_at`` answers 429 or 503 (with ``Retry-After``) or 500 without
being sent, or raises a timeout or a connection reset before it is sent or after
the service did the work.

The injector is switchable: unarmed it only counts, so a clean run enumerates
the calls a flow makes and the test then fails each of them in turn.
"""

from __future__ import annotations

import functools
import json
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


def registry_state(registry: Any, environments: list[str]) -> dict[str, Any]:
    """Every model's versions, aliases, alias history, approvals, monitors, audit chain and outbox watermark,
    without times and hashes (which differ between runs): what an all-or-nothing step must leave unchanged
    or complete."""
    state: dict[str, Any] = {}
    for model in sorted(set(registry.list_models()) | set(registry.audited_models())):
        versions = registry.list_versions(model)
        state[model] = {
            "versions": [(v.version, str(v.status), v.package_uri) for v in versions],
            "aliases": {env: (a.version if (a := registry.get_alias(model, env)) else None) for env in environments},
            "history": {
                env: [(c.action, c.from_version, c.to_version) for c in registry.alias_history(model, env)]
                for env in environments
            },
            "approvals": {
                f"{v.version}@{env}": sorted(a.approver for a in registry.list_approvals(model, v.version, env))
                for v in versions
                for env in environments
            },
            "monitors": sorted(
                (m.environment, m.kind, m.state, m.version) for m in registry.list_monitor_status(model)
            ),
            "audit": [
                (r.seq, r.action, r.environment, r.from_version, r.to_version, r.actor, r.trigger)
                for r in registry.audit_records(model)
            ],
            "watermark": registry.outbox_watermark(model),
        }
    return state


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


# -- Azure ---------------------------------------------------------------------------------------
#: (kind, phase) for the Azure clients, in the order the tests take them (call i gets fault i mod 7)
AZURE_FAULTS: tuple[tuple[str, str], ...] = (
    ("http429", "before"),
    ("http503", "before"),
    ("http500", "before"),
    ("timeout", "after"),
    ("reset", "before"),
    ("timeout", "before"),
    ("reset", "after"),
)

#: status, storage error code and Retry-After of the HTTP faults
_AZURE_STATUS = {
    "http429": (429, "TooManyRequests", "1"),
    "http503": (503, "ServerBusy", "1"),
    "http500": (500, "InternalError", None),
}


class FaultTransport:
    """An azure-core transport around the real one: counts every request the client sends and, when the
    shared :class:`Faults` is armed for this call, answers it with an error instead.

    The SDK clients are built with ``retry_total=0`` beside it, so a fault reaches the adapter as it would once
    the SDK's own retries are exhausted. HTTP faults answer a real response (status, ``x-ms-error-code``,
    ``Retry-After``, a JSON or XML error body) without sending the request; a timeout or reset is raised before
    the request is sent, or after the service did the work and the reply was lost.
    """

    def __init__(self, faults: Faults, label: str, inner: Any = None) -> None:
        from azure.core.pipeline.transport import RequestsTransport

        self.faults, self.label = faults, label
        self.inner = inner if inner is not None else RequestsTransport()

    def __enter__(self) -> FaultTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.inner.__exit__(*args)

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def sleep(self, duration: float) -> None:
        self.inner.sleep(duration)

    def send(self, request: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import (
            ServiceRequestError,
            ServiceRequestTimeoutError,
            ServiceResponseError,
            ServiceResponseTimeoutError,
        )

        name = f"{self.label}.{request.method}" + (" $batch" if "$batch" in request.url else "")
        faults = self.faults
        faults.calls.append(name)
        index = len(faults.calls) - 1
        if faults._hit("before", index):
            kind = faults.fault[0]
            faults.fail_at = None
            faults.injected.append(Injected(index, name, kind, "before"))
            if kind in _AZURE_STATUS:
                return self._answer(request, *_AZURE_STATUS[kind])
            if kind == "timeout":
                raise ServiceRequestTimeoutError("Connection to 127.0.0.1 timed out (connect timeout)")
            raise ServiceRequestError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))")
        response = self.inner.send(request, **kwargs)
        if faults._hit("after", index):
            kind = faults.fault[0]
            faults.fail_at = None
            faults.injected.append(Injected(index, name, kind, "after"))
            if kind == "timeout":
                raise ServiceResponseTimeoutError("Read timed out. (read timeout)")
            raise ServiceResponseError("('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))")
        return response

    def _answer(self, request: Any, status: int, code: str, retry_after: str | None) -> Any:
        import io

        import requests
        import urllib3
        from azure.core.pipeline.transport import RequestsTransportResponse
        from azure.core.rest import HttpRequest as RestHttpRequest
        from requests.structures import CaseInsensitiveDict

        message = f"{code}: the service is busy or failed (injected)"
        if self.label == "blob":
            content_type = "application/xml"
            body = (
                f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message></Error>'
            )
        else:
            content_type = "application/json"
            body = json.dumps({"odata.error": {"code": code, "message": {"lang": "en-US", "value": message}}})
        content = body.encode()
        headers = {"Content-Type": content_type, "Content-Length": str(len(content)), "x-ms-error-code": code}
        if retry_after:
            headers["Retry-After"] = retry_after
        raw = requests.Response()
        raw.status_code = status
        raw.reason = {429: "Too Many Requests", 503: "Service Unavailable", 500: "Internal Server Error"}[status]
        raw.raw = urllib3.HTTPResponse(body=io.BytesIO(content), headers=headers, status=status, preload_content=False)
        raw._content, raw._content_consumed = content, True
        raw.headers = CaseInsensitiveDict(headers)
        raw.url = request.url
        if isinstance(request, RestHttpRequest):  # what RequestsTransport answers a request of azure.core.rest
            from azure.core.rest._requests_basic import RestRequestsTransportResponse

            response = RestRequestsTransportResponse(request=request, internal_response=raw)
            response.read()
            return response
        return RequestsTransportResponse(request, raw)


@contextmanager
def azure_faults(monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    """Route the storage clients the Azure wiring builds from now on (Blob, Table Storage) through
    :class:`FaultTransport` (call ``bootstrap.reset()`` after entering); ``faults.transport("eventgrid")`` gives
    the transport for an Event Grid client built by the test."""
    from modelpilot.adapters.azure import wiring

    faults = Faults()
    original = wiring.storage_clients

    def storage_clients(settings: Any, credential: Any) -> Any:
        from azure.data.tables import TableServiceClient
        from azure.storage.blob import BlobServiceClient

        from modelpilot.config import app_setting

        conn = app_setting(settings.azure_storage_connection_setting or "")
        assert conn, "the Azure fault tests run on Azurite through a connection string"
        blob = BlobServiceClient.from_connection_string(conn, transport=FaultTransport(faults, "blob"), retry_total=0)
        table = TableServiceClient.from_connection_string(
            conn, transport=FaultTransport(faults, "table"), retry_total=0
        )
        return blob, table

    monkeypatch.setattr(wiring, "storage_clients", storage_clients)
    faults.transport = lambda label: FaultTransport(faults, label)  # type: ignore[attr-defined]
    try:
        yield faults
    finally:
        monkeypatch.setattr(wiring, "storage_clients", original)
