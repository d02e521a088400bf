"""The one dispatch path of every trigger: run a translated command once per business key.

Every runtime (Lambda, Azure Functions, the timers, the operator APIs) sends what its
trigger asks for through :func:`handle_once` (or :func:`handle_all` for a batch), so
all of them share one idempotency store (the ``IdempotencyStore`` port) and one error
policy:

* **duplicate** — a key already completed returns the stored result, marked
  ``"duplicate": true``; nothing runs again;
* **retryable** (``TransientError``, ``ConcurrencyConflict``, an unexpected
  exception) — the claim is released and the error raised, so the platform retries
  the event (Lambda's async retries then the DLQ; the Functions host and Event Grid
  retries then the dead-letter container);
* **permanent** (bad payload, bad package, not authorised) — retrying never helps:
  the failure is logged, sent to the notifier (surfaced, not lost), stored under the
  key (a redelivery answers the same) and replied as ``{"status": "failed", …}`` so
  the platform stops retrying;
* **not remembered** — a failure that says nothing final about the event: an unknown
  model (``UnknownModel``: the model may be registered later, and a stream of events
  for names that do not exist must not fill the store) and a broken configuration
  (``PolicyError``: the deployment's policy is empty, unreadable or invalid; once it is
  fixed the same event must run). The claim is released, the failure logged, notified
  and replied ``failed`` like a permanent one, but nothing is stored: a redelivery runs
  the command again.

A claim's lock lasts ``lock_seconds``: at most :data:`LOCK_SECONDS`, and no longer than
the invocation may still run when the runtime says so (Lambda's remaining time), so a
run that timed out never blocks its own retries.

A translation error (the payload itself is malformed, so there is no key yet) follows
the same policy through :func:`reject`, without storing anything.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.exceptions import InvalidInput, ModelPilotError, PolicyError, UnknownModel

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from modelpilot.domain.commands import Command
    from modelpilot.service.messagebus import MessageBus

__all__ = [
    "IDEMPOTENCY_HEADER",
    "LOCK_SECONDS",
    "Delivery",
    "claim_seconds",
    "dispatch",
    "handle_all",
    "handle_once",
    "operator_trigger",
    "reject",
    "remembered",
    "summary_status",
]

log = telemetry.get_logger("modelpilot.dispatch")

#: commands that judge the release live in an environment: without a trace of their own they continue its trace
RELEASE_COMMANDS = frozenset({"HandleAlarm", "RollbackModel"})
#: the longest a claim is held: a run that crashed without releasing it blocks its key this long at most
LOCK_SECONDS = 900


def claim_seconds(remaining_ms: float | None) -> int:
    """Return how long a claim may be held: the invocation's remaining time (rounded up to whole
    seconds, at least 1) when the runtime knows it, never more than :data:`LOCK_SECONDS`."""
    if remaining_ms is None or remaining_ms != remaining_ms:  # unknown (or NaN)
        return LOCK_SECONDS
    return max(1, min(LOCK_SECONDS, math.ceil(remaining_ms / 1000)))


#: the HTTP header an operator API client names its request with, so that a retry changes nothing twice
IDEMPOTENCY_HEADER = "Idempotency-Key"
_MAX_KEY = 255


def operator_trigger(idempotency_key: str | None) -> str | None:
    """Return the trigger of an operator request that carries ``Idempotency-Key`` (None: it carries none).

    Every operator API (AWS and Azure) uses this: the key becomes the command's trigger,
    ``api:<key>``, and the lifecycle handlers change an alias at most once per trigger (a retried
    POST rollback answers ``noop``: "already applied"). The prefix keeps a client's key from ever
    equalling the trigger of an upload or an alarm. A key longer than 255 characters, or with
    characters outside printable ASCII, is refused (``InvalidInput``).
    """
    if idempotency_key is None or not idempotency_key.strip():
        return None
    key = idempotency_key.strip()
    if len(key) > _MAX_KEY or not all(" " <= c <= "~" for c in key):
        raise InvalidInput(
            f"{IDEMPOTENCY_HEADER} must be 1 to {_MAX_KEY} printable ASCII characters (a UUID is a good choice)",
            field=IDEMPOTENCY_HEADER,
        )
    return f"api:{key}"


def remembered(error: ModelPilotError) -> bool:
    """True when a permanent ``error`` is the event's final answer (stored under its key); False for an
    unknown model and for a broken configuration, which a later delivery may find fixed."""
    return not isinstance(error, UnknownModel | PolicyError)


@dataclass(frozen=True)
class Delivery:
    """One unit of work a trigger asks for: a command and its business key, or why nothing is to be done.

    ``key`` is derived from the event (S3 bucket/key/version, event id, alarm name +
    state + time, webhook delivery id, ``Idempotency-Key`` header); None means the
    request is not de-duplicated (an operator request that names no key).
    ``source`` says where it came from, for logs and notifications.
    """

    source: str
    command: Command | None = None
    key: str | None = None
    ignored: str = ""
    #: the W3C trace context the event carried, continued by the command's span
    traceparent: str | None = None


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return result


def reject(bus: MessageBus, error: ModelPilotError, *, function: str, source: str) -> dict[str, Any]:
    """Surface a permanently bad event or command: log it, notify humans; return the ``failed`` reply.

    The reply's ``source`` is the event's; an error that names its own source (a policy file) keeps it as
    ``error_source``.
    """
    details = error.to_dict()
    if "source" in details:
        details["error_source"] = details.pop("source")
    result = _json_safe({"status": "failed", "function": function, "source": source, **details})
    log.error(
        "%s rejected %s: %s",
        function,
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


def handle_once(
    bus: MessageBus, delivery: Delivery, *, function: str, lock_seconds: int = LOCK_SECONDS
) -> dict[str, Any]:
    """Handle ``delivery``'s command once per key (see the module docstring); return a JSON-safe reply.

    ``lock_seconds`` is how long the key's claim may be held (see :func:`claim_seconds`).
    """
    if delivery.command is None:
        return {"status": "ignored", "source": delivery.source, "message": delivery.ignored}
    key = delivery.key
    store = bus.services.idempotency if key is not None else None
    if store is not None and key is not None:
        earlier = store.begin(key, lock_seconds=lock_seconds)
        if earlier is not None:
            log.info("duplicate delivery of %s ignored", key, extra={"modelpilot": {"key": key}})
            return {**earlier, "duplicate": True}
    try:
        attributes = {"faas.name": function, "modelpilot.source": delivery.source, "modelpilot.key": key}
        with telemetry.delivery_span(function, _parent(bus, delivery), attributes) as span:
            outcome = bus.handle(delivery.command)
            span.set_attribute("modelpilot.outcome", outcome.status)
    except ModelPilotError as exc:
        if exc.retryable:
            if store is not None and key is not None:
                store.release(key)
            raise
        result = reject(bus, exc, function=function, source=delivery.source)
        if store is not None and key is not None:
            if remembered(exc):
                store.complete(key, {**result, "key": key})
            else:
                store.release(key)
        return {**result, "key": key} if key is not None else result
    except BaseException:
        if store is not None and key is not None:
            store.release(key)
        raise
    result = _json_safe({**outcome.to_dict(), "key": key} if key is not None else outcome.to_dict())
    if store is not None and key is not None:
        store.complete(key, result)
    return result


def _parent(bus: MessageBus, delivery: Delivery) -> str | None:
    """The trace a delivery continues: the one it carries, else (for an alarm or a rollback, which carry
    none) the trace of the release it judges, so one incident reads as one trace."""
    if delivery.traceparent:
        return delivery.traceparent
    command = delivery.command
    model, environment = getattr(command, "model", None), getattr(command, "environment", None)
    if type(command).__name__ not in RELEASE_COMMANDS or not isinstance(model, str) or not isinstance(environment, str):
        return None
    from modelpilot.service.incident import release_traceparent

    try:
        return release_traceparent(bus.services.registry, model, environment)
    except ModelPilotError:
        return None


def summary_status(results: Iterable[dict[str, Any]]) -> str:
    """The status of a batch: ``ignored`` (nothing to do), ``failed`` (every item that ran failed),
    ``partial`` (some failed), else ``ok``."""
    statuses = [r.get("status") for r in results]
    ran = [s for s in statuses if s != "ignored"]
    if not ran:
        return "ignored"
    failed = sum(1 for s in ran if s == "failed")
    if failed == len(ran):
        return "failed"
    return "partial" if failed else "ok"


def handle_all(
    bus: MessageBus, deliveries: Iterable[Delivery], *, function: str, lock_seconds: int = LOCK_SECONDS
) -> dict[str, Any]:
    """Handle every delivery of one trigger in order; return ``{"status": …, "results": […]}``.

    A retryable error of one delivery raises at once (the platform retries the whole
    trigger; deliveries already done answer from the idempotency store the next time).
    """
    results = [handle_once(bus, d, function=function, lock_seconds=lock_seconds) for d in deliveries]
    return {"status": summary_status(results), "results": results}


def dispatch(
    bus: MessageBus,
    translate: Callable[[], Delivery | list[Delivery] | None],
    *,
    function: str,
    source: str,
    lock_seconds: int = LOCK_SECONDS,
) -> dict[str, Any]:
    """Translate a trigger's payload and handle what it asks for: the whole path of every function.

    A payload that cannot be translated follows the same error policy (retryable: raised;
    permanent: rejected, logged and notified, replied ``failed``); None means the trigger
    asks for nothing (replied ``ignored``); a list is a batch (:func:`handle_all`).
    """
    try:
        translated = translate()
    except ModelPilotError as exc:
        if exc.retryable:
            raise
        return reject(bus, exc, function=function, source=source)
    if translated is None:
        return {"status": "ignored", "function": function, "source": source}
    if isinstance(translated, list):
        return handle_all(bus, translated, function=function, lock_seconds=lock_seconds)
    return handle_once(bus, translated, function=function, lock_seconds=lock_seconds)
