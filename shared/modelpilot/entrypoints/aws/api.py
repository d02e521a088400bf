"""The operator HTTP API (API Gateway HTTP API, payload 2.0, IAM authorization) on Powertools' resolver.

=======  ===================================================  ==============================
method   path                                                 body
=======  ===================================================  ==============================
POST     ``/models/{model}/environments/{environment}/promote``   ``{"version"?, "reason"?, "dry_run"?,
                                                              "from_version"?}``
POST     ``/models/{model}/environments/{environment}/rollback``  ``{"reason", "to_version"?, "from_version"?}``
POST     ``/models/{model}/versions/{version}/approve``           ``{"environment", "comment"?}``
GET      ``/models/{model}/environments/{environment}/history``
GET      ``/models/{model}/status`` and ``/status``
GET      ``/models/{model}/environments/{environment}/incident``  ``?from&to&format=json|html|markdown``
GET      ``/models/{model}/canaries/{environment}``
POST     ``/models/{model}/canaries/{environment}/{action}``      ``{"reason"?, "expected_revision"?}``
=======  ===================================================  ==============================

The canary routes (pause, resume, abort, promote; their replies) are described in
:mod:`modelpilot.entrypoints.canary`, shared with the Azure API.

The actor recorded in the audit log is the caller's canonical IAM principal
(:func:`modelpilot.domain.identity.aws_principal` of
``requestContext.authorizer.iam.userArn``, which API Gateway sets from the SigV4
signature): an IAM user keeps its ARN, an assumed role is the role without the
session name the caller chose (``…:assumed-role/Approvers/alice-1`` and
``…/alice-2`` are one approver). A request without IAM identity is refused with
403. The GET routes check the ``view`` action for that principal in the service layer
(:mod:`modelpilot.service.queries`): with a ``roles`` block in the policy, a caller without a role on the
model answers 403 and the denial is audited. Errors answer with the error's HTTP status and JSON body.

A POST that carries an ``Idempotency-Key`` header changes state at most once for that key:
the key becomes the command's trigger (:func:`modelpilot.service.dispatch.operator_trigger`,
as on Azure), so a client's retry of a rollback answers ``noop`` instead of rolling back
again. ``from_version`` makes a promotion or a rollback conditional: it does nothing unless the
environment still runs that version.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from pydantic import BaseModel, ConfigDict, Field

from modelpilot.bootstrap import get_bus
from modelpilot.domain.commands import ApproveModel, PromoteModel, RollbackModel
from modelpilot.domain.identity import aws_principal
from modelpilot.entrypoints._validation import json_body, validate
from modelpilot.entrypoints.canary import change_command, conflict_reply
from modelpilot.entrypoints.canary import status_reply as canary_status_reply
from modelpilot.exceptions import ConcurrencyConflict, InvalidInput, ModelPilotError, NotAuthorized
from modelpilot.service import queries
from modelpilot.service.dispatch import IDEMPOTENCY_HEADER, operator_trigger
from modelpilot.service.limits import MAX_TEXT_CHARS, MAX_VERSION

__all__ = ["app", "caller"]

app = APIGatewayHttpResolver()


class _Body(BaseModel):
    # strict: JSON true is not the version 1, "3" is not 3
    model_config = ConfigDict(extra="forbid", strict=True)


class _PromoteBody(_Body):
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    reason: str = Field(default="", max_length=MAX_TEXT_CHARS)
    dry_run: bool = False
    from_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)


class _RollbackBody(_Body):
    reason: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    to_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    from_version: int | None = Field(default=None, ge=1, le=MAX_VERSION)


class _ApproveBody(_Body):
    environment: str = Field(min_length=1, max_length=63)
    comment: str = Field(default="", max_length=MAX_TEXT_CHARS)


def caller() -> str:
    """Return the canonical IAM principal of the current request; raise ``NotAuthorized`` without one."""
    iam = app.current_event.request_context.authorizer.iam
    arn = iam.user_arn if iam.raw_event else None
    if not arn or not str(arn).startswith("arn:"):
        raise NotAuthorized("this API needs IAM authorization (SigV4); no IAM principal in the request")
    return aws_principal(str(arn))


def _body(model: type[BaseModel]) -> Any:
    event = app.current_event
    data = json_body(event.raw_event.get("body"), base64_encoded=bool(event.is_base64_encoded))
    return validate(model, data, "request body")


def _trigger() -> str:
    """The command's trigger: the client's ``Idempotency-Key`` (a retry changes nothing twice), else the
    request id (each request its own)."""
    key = app.current_event.headers.get(IDEMPOTENCY_HEADER)  # case-insensitive in Powertools v3
    return operator_trigger(key) or f"api:{app.current_event.request_context.request_id}"


def _json(status: int, data: Any) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=json.dumps(data, default=str))


def _outcome(command: Any) -> Response[str]:
    outcome = get_bus().handle(command)
    return _json(409 if outcome.status == "blocked" else 200, outcome.to_dict())


@app.post("/models/<model>/environments/<environment>/promote")
def promote(model: str, environment: str) -> Response[str]:
    """Promote a version to ``environment`` (gates apply)."""
    body: _PromoteBody = _body(_PromoteBody)
    actor = caller()
    return _outcome(
        PromoteModel(
            model=model,
            environment=environment,
            actor=actor,
            version=body.version,
            reason=body.reason or f"promoted by {actor}",
            dry_run=body.dry_run,
            from_version=body.from_version,
            trigger=_trigger(),
        )
    )


@app.post("/models/<model>/environments/<environment>/rollback")
def rollback(model: str, environment: str) -> Response[str]:
    """Roll ``environment`` back."""
    body: _RollbackBody = _body(_RollbackBody)
    return _outcome(
        RollbackModel(
            model=model,
            environment=environment,
            actor=caller(),
            reason=body.reason,
            to_version=body.to_version,
            from_version=body.from_version,
            trigger=_trigger(),
        )
    )


@app.post("/models/<model>/versions/<version>/approve")
def approve(model: str, version: str) -> Response[str]:
    """Approve a version for an environment."""
    if not (version.isascii() and version.isdigit() and 1 <= len(version) <= 16 and 1 <= int(version) <= MAX_VERSION):
        raise InvalidInput(f"version must be a whole number from 1 to 2**53, got {version[:40]!r}")
    body: _ApproveBody = _body(_ApproveBody)
    return _outcome(
        ApproveModel(
            model=model,
            version=int(version),
            environment=body.environment,
            approver=caller(),
            comment=body.comment,
            trigger=_trigger(),
        )
    )


@app.get("/models/<model>/environments/<environment>/history")
def history(model: str, environment: str) -> Response[str]:
    """Every move of an alias, oldest first (the caller needs ``view`` when the policy declares roles)."""
    actor = caller()
    return _json(200, {"history": queries.read_history(get_bus().services, actor, model, environment)})


@app.get("/models/<model>/status")
def model_status(model: str) -> Response[str]:
    """Where one model runs in every environment."""
    actor = caller()
    return _json(200, {"status": queries.read_status(get_bus().services, actor, model)})


@app.get("/status")
def status() -> Response[str]:
    """Where every model the caller may view runs in every environment."""
    actor = caller()
    return _json(200, {"status": queries.read_status(get_bus().services, actor)})


@app.get("/models/<model>/canaries/<environment>")
def canary(model: str, environment: str) -> Response[str]:
    """The canary of ``environment``: weights, step, state, revision, the last analysis."""
    actor = caller()
    body, status = canary_status_reply(get_bus().services, actor, model, environment)
    return _json(status, body)


@app.post("/models/<model>/canaries/<environment>/<action>")
def canary_action(model: str, environment: str, action: str) -> Response[str]:
    """Pause, resume, abort or promote the canary (409 with the current revision when ``expected_revision`` lost)."""
    actor = caller()
    event = app.current_event
    command = change_command(
        model,
        environment,
        action,
        event.raw_event.get("body"),
        actor,
        _trigger(),
        base64_encoded=bool(event.is_base64_encoded),
    )
    bus = get_bus()
    try:
        outcome = bus.handle(command)
    except ConcurrencyConflict as exc:
        body, status = conflict_reply(bus.services.registry, exc, model, environment)
        return _json(status, body)
    return _json(200, outcome.to_dict())


@app.get("/models/<model>/environments/<environment>/incident")
def incident(model: str, environment: str) -> Response[str]:
    """The incident timeline (``?from=…&to=…`` ISO 8601; ``format=html`` for the page, ``markdown`` for the draft)."""
    from modelpilot.service.incident_render import to_html, to_markdown

    actor = caller()
    params = app.current_event.query_string_parameters or {}
    fmt = params.get("format", "json")
    if fmt not in ("json", "html", "markdown"):
        raise InvalidInput(f"format must be json, html or markdown, not {fmt!r}")
    timeline = queries.read_incident(
        get_bus().services, actor, model, environment, start=_when(params.get("from")), end=_when(params.get("to"))
    )
    if fmt == "html":
        return Response(status_code=200, content_type="text/html; charset=utf-8", body=to_html(timeline))
    if fmt == "markdown":
        return Response(status_code=200, content_type="text/markdown; charset=utf-8", body=to_markdown(timeline))
    return _json(200, {"timeline": timeline})


def _when(text: str | None) -> Any:
    from datetime import UTC, datetime

    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"invalid time {text!r}: use ISO 8601, e.g. 2026-11-26T10:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@app.exception_handler(ModelPilotError)  # type: ignore[untyped-decorator]
def _error(exc: ModelPilotError) -> Response[str]:
    return _json(exc.http_status, exc.to_dict())
