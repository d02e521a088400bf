"""The canary routes of both operator APIs (AWS and Azure): request body → ``ChangeCanary``, and their replies.

==========================================================  ============================================
``GET  /models/{model}/canaries/{environment}``             the canary's record (any authenticated caller)
``POST /models/{model}/canaries/{environment}/{action}``    ``pause`` | ``resume`` | ``abort`` | ``promote``;
                                                            body ``{"reason"?, "expected_revision"?}``
==========================================================  ============================================

Both clouds build the command and shape the replies here, so they answer alike:

* 200 with the outcome (``status``, ``message``, the canary);
* 404 for an action that is not one of :data:`~modelpilot.domain.canary.CANARY_ACTIONS` (nothing runs) and
  for an environment without a canary;
* 409 when ``expected_revision`` is not the canary's revision (another operator or the scheduler changed it):
  the body carries ``current_revision`` and the canary as it is now, so the caller can look and decide again;
* 403 when the caller may not act on the canary, 400 for a bad body.

``expected_revision`` is optional: without it the action applies to whatever the canary is now. The
``Idempotency-Key`` header becomes the command's trigger (``api:<key>``) as on the other POST routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from modelpilot.domain.canary import CANARY_ACTIONS
from modelpilot.domain.commands import ChangeCanary
from modelpilot.entrypoints._validation import json_body, validate
from modelpilot.exceptions import ConcurrencyConflict, NotFound
from modelpilot.service.limits import MAX_TEXT_CHARS

if TYPE_CHECKING:
    from modelpilot.domain.canary import CanaryAction
    from modelpilot.ports import RegistryStore
    from modelpilot.service.messagebus import Services

__all__ = ["CanaryBody", "change_command", "conflict_reply", "status_reply"]

#: a revision is a counter of changes: far below 2**53
_MAX_REVISION = 2**53


class CanaryBody(BaseModel):
    """Body of a canary action (strict: ``"3"`` is not the revision 3)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    reason: str = Field(default="", max_length=MAX_TEXT_CHARS)
    expected_revision: int | None = Field(default=None, ge=0, le=_MAX_REVISION)


def _action(text: str) -> CanaryAction:
    for action in CANARY_ACTIONS:
        if text == action:
            return action
    raise NotFound(f"no canary action {text[:40]!r}: use one of {', '.join(CANARY_ACTIONS)}", action=text[:40])


def change_command(
    model: str,
    environment: str,
    action: str,
    raw: bytes | str | None,
    actor: str,
    trigger: str | None,
    *,
    base64_encoded: bool = False,
) -> ChangeCanary:
    """Build ``ChangeCanary`` from the route and the request body (404 for an unknown action, 400 for a bad body)."""
    verb = _action(action)
    body = validate(CanaryBody, json_body(raw, base64_encoded=base64_encoded), "request body")
    return ChangeCanary(
        model=model,
        environment=environment,
        action=verb,
        actor=actor,
        reason=body.reason or f"{verb} by {actor}",
        expected_revision=body.expected_revision,
        trigger=trigger,
    )


def status_reply(svc: Services, actor: str, model: str, environment: str) -> tuple[dict[str, Any], int]:
    """Return ``({"canary": …}, 200)`` with the split, the steps and the next analysis (``canary status``) for
    ``actor`` (``view`` checked), or the 404 reply when ``environment`` never had a canary; an unknown model or
    environment raises, and so does a caller who may not view the model."""
    from modelpilot.service.queries import read_canary_status

    rows = read_canary_status(svc, actor, model, environment)
    if not rows:
        error = NotFound(f"{model} has no canary in {environment}", model=model, environment=environment)
        return error.to_dict(), 404
    return {"canary": rows[0]}, 200


def conflict_reply(
    registry: RegistryStore, exc: ConcurrencyConflict, model: str, environment: str
) -> tuple[dict[str, Any], int]:
    """Return the 409 reply of a lost compare-and-set: the error, ``current_revision`` and the canary as it is now."""
    canary = registry.get_canary(model, environment)
    body: dict[str, Any] = {**exc.to_dict(), "current_revision": canary.revision if canary else 0}
    body["canary"] = canary.to_dict() if canary else None
    return body, 409
