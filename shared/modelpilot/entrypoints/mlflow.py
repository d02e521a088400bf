"""MLflow 3.x registry webhooks: verify the signature over the raw bytes, then payload → command.

MLflow (``mlflow/webhooks/delivery.py``) POSTs ``{"entity", "action", "timestamp", "data"}`` with the headers
``X-MLflow-Delivery-Id`` (a UUID, the same on MLflow's own retries), ``X-MLflow-Timestamp`` (Unix seconds) and
``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "{delivery_id}.{timestamp}.{raw body}">`` keyed with the webhook's
secret. :func:`receive` is the whole edge, shared by ``modelpilot serve`` and any HTTP trigger:

1. the signature is checked over the exact bytes received (constant-time), with the secret read through the
   ``SecretsProvider`` port; a missing or wrong signature, or a timestamp more than 300 s from now (either way),
   is refused with 401 and changes nothing. Neither the secret nor the body is logged;
2. the payload is validated (pydantic); a malformed one is answered 400;
3. the command runs once through ``handle_once``. A delivery id seen before (a replay, or MLflow retrying a
   delivery that succeeded) answers the stored result marked ``duplicate`` and changes nothing.

=================================  =========================  ==========================================
event                              command                    business key
=================================  =========================  ==========================================
``model_version.created``          ``ImportMlflowVersion``    ``mlflow:<model>/<version>#created``
``model_version_alias.created``    ``RequestMlflowPromotion`` ``mlflow:<delivery id>``
``model_version_tag.set``          ``SetMlflowVersionTag``    ``mlflow:<delivery id>``
anything else                      (ignored, 200)
=================================  =========================  ==========================================
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from modelpilot.domain.commands import ImportMlflowVersion, RequestMlflowPromotion, SetMlflowVersionTag
from modelpilot.entrypoints._validation import validate
from modelpilot.exceptions import InvalidEvent, ModelPilotError, NotAuthorized
from modelpilot.service.dispatch import Delivery, handle_once, reject
from modelpilot.service.mlflow import ACTOR

if TYPE_CHECKING:
    from collections.abc import Mapping

    from modelpilot.service.messagebus import MessageBus

__all__ = [
    "ACTOR",
    "MAX_BODY_BYTES",
    "TOLERANCE_SECONDS",
    "WebhookRefused",
    "delivery",
    "receive",
    "receive_on_platform",
    "verify",
]

TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 1024 * 1024
SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
_DELIVERY_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_VERSION = r"^[1-9][0-9]{0,9}$"


class WebhookRefused(NotAuthorized):
    """The request is not a genuine, fresh MLflow delivery (answered 401)."""

    http_status = 401


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    return next((str(v) for k, v in headers.items() if k.lower() == wanted), "")


def verify(headers: Mapping[str, str], body: bytes, secret: str, *, now: float | None = None) -> str:
    """Check the delivery's signature and freshness; return its delivery id or raise :class:`WebhookRefused`."""
    delivery_id, stamp = _header(headers, DELIVERY_HEADER), _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not (delivery_id and stamp and signature):
        raise WebhookRefused(
            f"a signed MLflow delivery needs {DELIVERY_HEADER}, {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}"
        )
    if not _DELIVERY_ID.match(delivery_id):
        raise WebhookRefused(f"{DELIVERY_HEADER} is not a delivery id")
    if not stamp.isdigit() or len(stamp) > 12:
        raise WebhookRefused(f"{TIMESTAMP_HEADER} must be Unix seconds")
    age = (time.time() if now is None else now) - int(stamp)
    if abs(age) > TOLERANCE_SECONDS:
        raise WebhookRefused(f"stale delivery: signed {int(age)} s from now (more than {TOLERANCE_SECONDS} s)")
    expected = hmac.new(secret.encode(), f"{delivery_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    for candidate in signature.split():
        version, _, encoded = candidate.partition(",")
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if version == "v1" and hmac.compare_digest(given, expected):
            return delivery_id
    raise WebhookRefused("the MLflow signature does not match (wrong secret, or the body was changed)")


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    entity: str
    action: str
    timestamp: str = ""
    data: dict[str, Any]


class _VersionCreated(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=256)
    version: str = Field(pattern=_VERSION)


class _AliasCreated(_VersionCreated):
    alias: str = Field(min_length=1, max_length=256)


class _TagSet(_VersionCreated):
    key: str = Field(min_length=1, max_length=250)
    value: str = Field(max_length=5000)


def delivery(delivery_id: str, body: bytes) -> Delivery:
    """Return what one verified delivery asks for (see the module docstring)."""
    try:
        raw = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidEvent("the MLflow webhook body is not JSON", field="<body>") from None
    envelope: _Envelope = validate(_Envelope, raw, "MLflow webhook")
    event, source, trigger = f"{envelope.entity}.{envelope.action}", f"mlflow:{delivery_id}", f"mlflow:{delivery_id}"
    if event == "model_version.created":
        created: _VersionCreated = validate(_VersionCreated, envelope.data, "model_version.created data")
        return Delivery(
            source,
            ImportMlflowVersion(created.name, created.version, actor=ACTOR, trigger=trigger),
            f"mlflow:{created.name}/{created.version}#created",
        )
    if event == "model_version_alias.created":
        alias: _AliasCreated = validate(_AliasCreated, envelope.data, "model_version_alias.created data")
        command = RequestMlflowPromotion(alias.name, alias.alias, alias.version, actor=ACTOR, trigger=trigger)
        return Delivery(source, command, f"mlflow:{delivery_id}")
    if event == "model_version_tag.set":
        tag: _TagSet = validate(_TagSet, envelope.data, "model_version_tag.set data")
        command_tag = SetMlflowVersionTag(tag.name, tag.version, tag.key, tag.value, actor=ACTOR, trigger=trigger)
        return Delivery(source, command_tag, f"mlflow:{delivery_id}")
    return Delivery(source, ignored=f"MLflow event {event} is not one ModelPilot acts on")


def receive(
    bus: MessageBus, headers: Mapping[str, str], body: bytes, *, secret_name: str, now: float | None = None
) -> tuple[int, dict[str, Any]]:
    """Verify and handle one webhook request; return ``(HTTP status, JSON reply)``.

    401: not a genuine, fresh delivery; 400: a malformed payload; 413: a body over 1 MiB; 422: the command failed
    permanently (the reply names the error; it was notified); 200: handled, ignored or a duplicate. A transient
    error (MLflow or a store unavailable) raises, for the caller to answer 503 so that MLflow retries.
    """
    function = "mlflow_webhook"
    if len(body) > MAX_BODY_BYTES:
        return 413, {"status": "failed", "error": "too_large", "message": "the body is over 1 MiB"}
    if bus.services.secrets is None:
        return 500, {"status": "failed", "error": "no_secrets", "message": "this backend has no secret store"}
    try:
        secret = bus.services.secrets.get_secret(secret_name)
    except ModelPilotError as exc:
        if exc.retryable:
            raise
        return 500, reject(bus, exc, function=function, source="mlflow webhook secret")
    try:
        delivery_id = verify(headers, body, secret, now=now)
    except WebhookRefused as exc:
        return exc.http_status, {"status": "refused", "message": exc.message}
    try:
        work = delivery(delivery_id, body)
    except ModelPilotError as exc:
        if exc.retryable:
            raise
        return exc.http_status, reject(bus, exc, function=function, source=f"mlflow:{delivery_id}")
    reply = handle_once(bus, work, function=function)
    return (422 if reply.get("status") == "failed" else 200), reply


def receive_on_platform(headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """:func:`receive` with the process's bus and the webhook secret named by the settings (an HTTP trigger)."""
    from modelpilot.bootstrap import get_bus
    from modelpilot.config import Settings

    return receive(get_bus(), headers, body, secret_name=Settings.from_env().mlflow_webhook_secret)
