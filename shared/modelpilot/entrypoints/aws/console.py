"""Console and ``aws lambda invoke`` payloads of the promote and rollback functions.

* promote function: ``{"action": "promote", "model": "churn", "environment": "staging", "version": 3,
  "reason": "…", "dry_run": false}`` or ``{"action": "approve", "model": "churn", "version": 3,
  "environment": "prod", "comment": "…"}``
* rollback function: ``{"action": "rollback", "model": "churn", "environment": "prod", "reason": "…",
  "to_version": 2}``

The actor is the invocation's identity where Lambda provides one (a Cognito
identity), else :data:`CONSOLE_ACTOR`: Lambda does not tell a function which IAM
principal invoked it, so such a caller is anonymous and cannot approve (use the
operator API, which knows the principal). An asynchronous invocation that Lambda retries
keeps its request id, which is the idempotency key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from modelpilot.domain.commands import ApproveModel, Command, PromoteModel, RollbackModel
from modelpilot.entrypoints._validation import validate, validate_as
from modelpilot.service.dispatch import Delivery

__all__ = [
    "CONSOLE_ACTOR",
    "ApprovePayload",
    "PromotePayload",
    "RollbackPayload",
    "console_actor",
    "promote_command",
    "promote_delivery",
    "rollback_command",
    "rollback_delivery",
]


#: a W3C trace context (``00-<trace id>-<parent id>-<flags>``)
TRACEPARENT = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    #: the trace this step continues (a release pipeline passes the traceparent of the event it reacts to)
    traceparent: str | None = Field(default=None, pattern=TRACEPARENT)


class PromotePayload(_Payload):
    """Promote a version (default: what the previous environment runs) to ``environment``."""

    action: Literal["promote"]
    environment: str = Field(min_length=1)
    version: int | None = Field(default=None, ge=1)
    reason: str = ""
    dry_run: bool = False


class ApprovePayload(_Payload):
    """Approve ``version`` for ``environment``."""

    action: Literal["approve"]
    version: int = Field(ge=1)
    environment: str = Field(min_length=1)
    comment: str = ""


class RollbackPayload(_Payload):
    """Roll ``environment`` back (to ``to_version``, or the last healthy version)."""

    action: Literal["rollback"]
    environment: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    to_version: int | None = Field(default=None, ge=1)


_PROMOTE: TypeAdapter[PromotePayload | ApprovePayload] = TypeAdapter(
    Annotated[PromotePayload | ApprovePayload, Field(discriminator="action")]
)


#: the actor of an invocation whose caller Lambda does not name
CONSOLE_ACTOR = "anonymous:console"


def console_actor(context: Any) -> str:
    """Return who invoked: the Cognito identity when Lambda provides one, else :data:`CONSOLE_ACTOR`."""
    identity = getattr(context, "identity", None)
    cognito = getattr(identity, "cognito_identity_id", None)
    return f"cognito:{cognito}" if isinstance(cognito, str) and cognito else CONSOLE_ACTOR


def promote_command(event: Any, actor: str, trigger: str) -> Command:
    """Return the promote or approve command of a console payload."""
    payload = validate_as(_PROMOTE, event, "promote function payload")
    if isinstance(payload, ApprovePayload):
        return ApproveModel(
            model=payload.model,
            version=payload.version,
            environment=payload.environment,
            approver=actor,
            comment=payload.comment,
            trigger=trigger,
        )
    return PromoteModel(
        model=payload.model,
        environment=payload.environment,
        actor=actor,
        version=payload.version,
        reason=payload.reason or f"promoted by {actor}",
        trigger=trigger,
        dry_run=payload.dry_run,
    )


def rollback_command(event: Any, actor: str, trigger: str) -> RollbackModel:
    """Return the rollback command of a console payload."""
    payload = validate(RollbackPayload, event, "rollback function payload")
    return RollbackModel(
        model=payload.model,
        environment=payload.environment,
        actor=actor,
        reason=payload.reason,
        to_version=payload.to_version,
        trigger=trigger,
    )


def promote_delivery(event: Any, context: Any) -> Delivery:
    """Return the promotion or approval a console invocation asks for, once per request id."""
    request = str(context.aws_request_id)
    command = promote_command(event, console_actor(context), f"console:{request}")
    return Delivery(f"console request {request}", command, f"console:{request}", traceparent=_traceparent(event))


def rollback_delivery(event: Any, context: Any) -> Delivery:
    """Return the rollback a console invocation asks for, once per request id."""
    request = str(context.aws_request_id)
    command = rollback_command(event, console_actor(context), f"console:{request}")
    return Delivery(f"console request {request}", command, f"console:{request}", traceparent=_traceparent(event))


def _traceparent(event: Any) -> str | None:
    """The payload's ``traceparent`` (validated with the payload), if any."""
    value = event.get("traceparent") if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
