"""Run a translated event through the bus once, and decide what the Functions host sees.

* A duplicate (same business key, already completed) returns the stored result.
* A retryable error (``TransientError``, ``ConcurrencyConflict``, an unexpected
  exception) releases the claim and is raised, so the host and Event Grid retry,
  and after the last retry the event lands in the dead-letter container.
* A permanent error (bad payload, bad package, unknown model) will never succeed:
  it is recorded under the key, logged and sent to the notifier (surfaced, not
  lost), and the function returns normally so the platform stops retrying.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.exceptions import ModelPilotError

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelpilot.domain.commands import Command
    from modelpilot.service.messagebus import MessageBus

__all__ = ["dispatch", "reject"]

log = telemetry.get_logger("modelpilot.azure")


def reject(bus: MessageBus, error: ModelPilotError, *, function: str, source: str) -> dict[str, Any]:
    """Surface a permanently bad event: log it and notify humans; return the reply."""
    result: dict[str, Any] = {"status": "failed", "function": function, "source": source, **error.to_dict()}
    log.error(
        "rejected event from %s: %s",
        source,
        error.message,
        extra={"modelpilot": {"function": function, "error": error.to_dict(), "source": source}},
    )
    bus.services.notifier.notify(
        f"[modelpilot] {function} rejected an event",
        f"{source}: {error.message}",
        attributes={"function": function, "error": error.code},
    )
    return result


def dispatch(
    bus: MessageBus,
    translate: Callable[[], tuple[Command, str] | None],
    *,
    function: str,
    source: str,
    traceparent: str | None = None,
) -> dict[str, Any]:
    """Translate, claim the business key, handle the command once; return a JSON-friendly result."""
    try:
        translated = translate()
    except ModelPilotError as exc:
        if exc.retryable:
            raise
        return reject(bus, exc, function=function, source=source)
    if translated is None:
        return {"status": "ignored", "function": function, "source": source}
    command, key = translated
    store = bus.services.idempotency
    if store is not None:
        earlier = store.begin(key)
        if earlier is not None:
            log.info("duplicate delivery of %s ignored", key, extra={"modelpilot": {"key": key}})
            return {**earlier, "duplicate": True}
    try:
        with telemetry.continue_trace(traceparent):
            outcome = bus.handle(command)
    except ModelPilotError as exc:
        if exc.retryable:
            if store is not None:
                store.release(key)
            raise
        result = reject(bus, exc, function=function, source=source)
        if store is not None:
            store.complete(key, result)
        return result
    except BaseException:
        if store is not None:
            store.release(key)
        raise
    result = {**outcome.to_dict(), "key": key}
    if store is not None:
        store.complete(key, result)
    return result
