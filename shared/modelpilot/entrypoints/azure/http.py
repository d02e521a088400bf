"""The operator HTTP API on Azure Functions: caller identity and request bodies → commands.

Routes (all ``auth_level=FUNCTION``; put App Service authentication with Entra ID
in front to know *who* calls)::

    POST /api/models/{model}/environments/{env}/promote    {"version": 3, "reason": "...", "dry_run": false,
                                                            "from_version": 2}
    POST /api/models/{model}/versions/{version}/approve     {"environment": "prod", "comment": "..."}
    POST /api/models/{model}/environments/{env}/rollback   {"reason": "...", "to_version": 2, "from_version": 3}
    GET  /api/status and /api/models/{model}/status
    GET  /api/models/{model}/environments/{env}/history
    GET  /api/models/{model}/environments/{env}/incident?from=…&to=…&format=json|html|markdown
    GET  /api/models/{model}/canaries/{env}
    POST /api/models/{model}/canaries/{env}/{action}        {"reason": "...", "expected_revision": 4}

The canary routes (pause, resume, abort, promote) answer as on AWS (:mod:`modelpilot.entrypoints.canary`):
404 for an unknown action or no canary, 409 with ``current_revision`` when ``expected_revision`` lost.

The actor is the Entra ID object id of the caller, ``entra:<oid>``, from the ``oid``
claim (``http://schemas.microsoft.com/identity/claims/objectidentifier``) of
``X-MS-CLIENT-PRINCIPAL`` (base64 JSON), else ``X-MS-CLIENT-PRINCIPAL-ID``. Display
names, e-mail and UPN claims are never used: they can change or be reused. Only App
Service authentication can vouch for these headers (it sets them and strips any a
client sends), so they are read only when the platform says authentication is on
(``WEBSITE_AUTH_ENABLED``); otherwise a key holder could claim to be anyone. Without
them the caller only proved it holds a function key: the actor is :data:`KEY_ACTOR`,
which is recorded but can never approve. A principal without an object id (another
identity provider) is refused with 403; a malformed one with 400.
The GET routes take the caller from the same headers and check the ``view`` action for it in the
service layer (:mod:`modelpilot.service.queries`): with a ``roles`` block in the policy, a caller
without a role on the model answers 403 and the denial is audited.
An ``Idempotency-Key`` header becomes the command's trigger (``api:<key>``,
:func:`modelpilot.service.dispatch.operator_trigger`, shared with the AWS API), so a
client's retry changes nothing twice.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelpilot.config import ENV, Settings
from modelpilot.domain.commands import ApproveModel, PromoteModel, RollbackModel
from modelpilot.entrypoints._validation import json_body
from modelpilot.entrypoints.azure.envelope import validation_message
from modelpilot.exceptions import InvalidInput, ModelPilotError, NotAuthorized
from modelpilot.service.limits import MAX_TEXT_CHARS, MAX_VERSION

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from modelpilot.domain.commands import Command

__all__ = [
    "AUTH_ENABLED_SETTING",
    "KEY_ACTOR",
    "Reply",
    "actor_from_headers",
    "approve_command",
    "canary_action_reply",
    "canary_reply",
    "history_reply",
    "incident_reply",
    "parse_body",
    "platform_auth_enabled",
    "promote_command",
    "rollback_command",
    "run_command",
    "status_reply",
]

#: a JSON body and its HTTP status
Reply = tuple[dict[str, Any], int]

#: the actor of a caller that proved only that it holds a function key (cannot approve)
KEY_ACTOR = "anonymous:function-key"
#: set to "True" by App Service when its authentication module runs in front of the app
AUTH_ENABLED_SETTING = ENV.AZURE_AUTH_ENABLED
_OID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return None


def platform_auth_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Return True when App Service authentication fronts the app (its headers can be trusted)."""
    return Settings.from_env(environ).azure_auth_enabled


def actor_from_headers(headers: Mapping[str, str], *, trusted: bool = True) -> str:
    """Return ``entra:<object id>`` of the caller from App Service authentication headers, else :data:`KEY_ACTOR`.

    ``trusted`` says whether App Service authentication set the headers; when False
    they are ignored. Raise ``InvalidInput`` for a malformed principal and
    ``NotAuthorized`` for one without an object id.
    """
    if not trusted:
        return KEY_ACTOR
    encoded = _header(headers, "X-MS-CLIENT-PRINCIPAL")
    if encoded:
        return _entra(_object_id(encoded))
    principal_id = _header(headers, "X-MS-CLIENT-PRINCIPAL-ID")
    if principal_id and principal_id.strip():
        return _entra(principal_id)
    return KEY_ACTOR


def _object_id(encoded: str) -> str:
    try:
        principal = json.loads(base64.b64decode(encoded, validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("X-MS-CLIENT-PRINCIPAL is not base64-encoded JSON") from None
    claims = principal.get("claims") if isinstance(principal, dict) else None
    if not isinstance(claims, list):
        raise InvalidInput("X-MS-CLIENT-PRINCIPAL has no list of claims")
    for claim in claims:
        typ = claim.get("typ") if isinstance(claim, dict) else None
        if isinstance(typ, str) and typ in _OID_CLAIMS and isinstance(claim.get("val"), str):
            return str(claim["val"])
    raise NotAuthorized("the caller's principal has no Entra ID object id (oid claim): sign in with Entra ID")


def _entra(oid: str) -> str:
    value = oid.strip().lower()
    if not _GUID.match(value):
        raise NotAuthorized("the caller's Entra ID object id is not a GUID")
    return f"entra:{value}"


class _Body(BaseModel):
    # strict: JSON true is not the version 1, "3" is not 3
    model_config = ConfigDict(extra="forbid", strict=True)


class PromoteBody(_Body):
    """Body of ``promote``."""

    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    reason: str = Field(default="", max_length=MAX_TEXT_CHARS)
    dry_run: bool = False
    from_version: int | None = Field(default=None, ge=1)


class ApproveBody(_Body):
    """Body of ``approve``."""

    environment: str = Field(min_length=1, max_length=63)
    comment: str = Field(default="", max_length=MAX_TEXT_CHARS)


class RollbackBody(_Body):
    """Body of ``rollback``."""

    reason: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    to_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    from_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)


def parse_body(raw: bytes, model: type[_Body]) -> Any:
    """Validate a JSON request body (empty means ``{}``).

    Raises ``PayloadTooLarge`` (413) over 64 KiB and ``InvalidInput`` (400) naming the field otherwise.
    """
    data = json_body(raw)
    if not isinstance(data, dict):
        raise InvalidInput(f"request body must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"invalid request body: {validation_message(exc)}") from None


def _version(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= len(text) <= 16 and 1 <= int(text) <= MAX_VERSION):
        raise InvalidInput(f"version must be a whole number from 1 to 2**53, not {text[:40]!r}")
    return int(text)


def promote_command(model: str, environment: str, raw: bytes, actor: str, key: str | None = None) -> PromoteModel:
    """Build ``PromoteModel`` from the route and body."""
    body: PromoteBody = parse_body(raw, PromoteBody)
    return PromoteModel(
        model=model,
        environment=environment,
        actor=actor,
        version=body.version,
        reason=body.reason or "operator promotion",
        trigger=key,
        dry_run=body.dry_run,
        from_version=body.from_version,
    )


def approve_command(model: str, version: str, raw: bytes, actor: str, key: str | None = None) -> ApproveModel:
    """Build ``ApproveModel`` from the route and body; the approver is the caller."""
    body: ApproveBody = parse_body(raw, ApproveBody)
    return ApproveModel(
        model=model,
        version=_version(version),
        environment=body.environment,
        approver=actor,
        comment=body.comment,
        trigger=key,
    )


def rollback_command(model: str, environment: str, raw: bytes, actor: str, key: str | None = None) -> RollbackModel:
    """Build ``RollbackModel`` from the route and body."""
    body: RollbackBody = parse_body(raw, RollbackBody)
    return RollbackModel(
        model=model,
        environment=environment,
        actor=actor,
        reason=body.reason,
        to_version=body.to_version,
        from_version=body.from_version,
        trigger=key,
    )


def _error_reply(exc: ModelPilotError) -> Reply:
    return exc.to_dict(), 503 if exc.retryable else exc.http_status


def run_command(headers: Mapping[str, str], build: Callable[[str, str | None], Command]) -> Reply:
    """Build a command from the caller (actor, ``Idempotency-Key``), handle it, and shape the reply.

    A blocked promotion answers 409, a retryable failure 503, other typed errors their own status.
    """
    from modelpilot.bootstrap import get_bus
    from modelpilot.service.dispatch import IDEMPOTENCY_HEADER, operator_trigger

    try:
        actor = actor_from_headers(headers, trusted=platform_auth_enabled())
        outcome = get_bus().handle(build(actor, operator_trigger(_header(headers, IDEMPOTENCY_HEADER))))
    except ModelPilotError as exc:
        return _error_reply(exc)
    return outcome.to_dict(), 409 if outcome.status == "blocked" else 200


def _reader(headers: Mapping[str, str]) -> str:
    """The caller of a read, derived exactly as for a command (:func:`run_command`)."""
    return actor_from_headers(headers, trusted=platform_auth_enabled())


def status_reply(headers: Mapping[str, str], model: str | None) -> Reply:
    """Which version runs in every environment (of one model, or of every model the caller may view)."""
    from modelpilot.bootstrap import get_bus
    from modelpilot.service.queries import read_status

    try:
        return {"status": read_status(get_bus().services, _reader(headers), model)}, 200
    except ModelPilotError as exc:
        return _error_reply(exc)


def history_reply(headers: Mapping[str, str], model: str, environment: str) -> Reply:
    """Every move of an environment's alias, oldest first."""
    from modelpilot.bootstrap import get_bus
    from modelpilot.service.queries import read_history

    try:
        rows = read_history(get_bus().services, _reader(headers), model, environment)
    except ModelPilotError as exc:
        return _error_reply(exc)
    return {"model": model, "environment": environment, "history": rows}, 200


def incident_reply(
    headers: Mapping[str, str], model: str, environment: str, params: Mapping[str, str]
) -> tuple[dict[str, Any] | str, int, str]:
    """The incident timeline as JSON, or as the HTML page / Markdown draft (``format``); with its content type."""
    from modelpilot.bootstrap import get_bus
    from modelpilot.service.incident_render import to_html, to_markdown
    from modelpilot.service.queries import read_incident

    try:
        fmt = params.get("format", "json")
        if fmt not in ("json", "html", "markdown"):
            raise InvalidInput(f"format must be json, html or markdown, not {fmt!r}")
        timeline = read_incident(
            get_bus().services,
            _reader(headers),
            model,
            environment,
            start=_when(params.get("from")),
            end=_when(params.get("to")),
        )
    except ModelPilotError as exc:
        body, status = _error_reply(exc)
        return body, status, "application/json"
    if fmt == "html":
        return to_html(timeline), 200, "text/html; charset=utf-8"
    if fmt == "markdown":
        return to_markdown(timeline), 200, "text/markdown; charset=utf-8"
    return {"timeline": timeline}, 200, "application/json"


def _when(text: str | None) -> Any:
    from datetime import UTC, datetime

    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"invalid time {text!r}: use ISO 8601, e.g. 2026-11-26T10:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def canary_reply(headers: Mapping[str, str], model: str, environment: str) -> Reply:
    """The canary of ``environment`` for the caller (``view`` checked; 404 when it never had one)."""
    from modelpilot.bootstrap import get_bus
    from modelpilot.entrypoints.canary import status_reply as canary_status

    try:
        return canary_status(get_bus().services, _reader(headers), model, environment)
    except ModelPilotError as exc:
        return _error_reply(exc)


def canary_action_reply(headers: Mapping[str, str], model: str, environment: str, action: str, raw: bytes) -> Reply:
    """Pause, resume, abort or promote the canary as the caller; a lost ``expected_revision`` answers 409 with
    the current revision (not 503: retrying the same request cannot succeed)."""
    from modelpilot.bootstrap import get_bus
    from modelpilot.entrypoints.canary import change_command, conflict_reply
    from modelpilot.exceptions import ConcurrencyConflict
    from modelpilot.service.dispatch import IDEMPOTENCY_HEADER, operator_trigger

    try:
        actor = actor_from_headers(headers, trusted=platform_auth_enabled())
        trigger = operator_trigger(_header(headers, IDEMPOTENCY_HEADER))
        command = change_command(model, environment, action, raw, actor, trigger)
        bus = get_bus()
        try:
            outcome = bus.handle(command)
        except ConcurrencyConflict as exc:
            return conflict_reply(bus.services.registry, exc, model, environment)
    except ModelPilotError as exc:
        return _error_reply(exc)
    return outcome.to_dict(), 200
