"""The outbox: every audited state change is published at least once, with an id consumers de-duplicate on.

A state change and its audit record commit in one transaction (see ``RegistryStore``);
the audit chain therefore already *is* an outbox: record ``seq`` *n* of a model is
the fact to announce. Each model has a watermark, "published up to seq", kept by the
registry. :func:`relay_model` rebuilds the events of the records above it
(``ModelRegistered``, ``ModelPromoted``, ``ModelRolledBack``, ``ModelApproved``,
``ModelRejected`` and the ``Canary*`` events of ``canary_*`` records), publishes them
with the id ``<model>#<seq>`` and only then moves the watermark (compare-and-set, never
backwards). A crash or a failed publish between the commit and the publish leaves the
watermark behind, so the next relay sends the events again:

* the bus relays a command's model before its handler runs and again after it
  (that second relay is how a command's own audited events reach the bus);
* the drift, SLO and canary timers relay every model (:func:`relay`);
* ``modelpilot outbox relay`` does it by hand.

Delivery is at least once: two relays racing, or a relay cut off after publishing and
before moving the watermark, send an event twice under the same id.

Upgrading: the first relay on a registry sets every existing model's watermark to its
chain head, then marks the registry (the ``EPOCH`` row), so history written before the
outbox existed is never re-sent. Until that mark is read back, the bus publishes a
command's events directly, as before the outbox.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Protocol

from modelpilot import telemetry
from modelpilot.domain.canary_events import CANARY_AUDIT_ACTIONS
from modelpilot.domain.events import (
    Event,
    ModelApproved,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    ModelRolledBack,
)
from modelpilot.exceptions import ModelPilotError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelpilot.domain.audit import AuditRecord
    from modelpilot.ports import EventPublisher, Notifier, RegistryStore


class Services(Protocol):
    """What the outbox needs of the bus's ``Services`` (typed apart: the bus imports this module)."""

    @property
    def registry(self) -> RegistryStore: ...

    @property
    def publisher(self) -> EventPublisher: ...

    @property
    def notifier(self) -> Notifier: ...


__all__ = [
    "EPOCH",
    "OUTBOX_EVENTS",
    "TIMER_COMMANDS",
    "after",
    "before",
    "event_id",
    "event_of",
    "models_of",
    "ready",
    "relay",
    "relay_model",
]

log = telemetry.get_logger("modelpilot.outbox")

#: the events the outbox carries (every other event is published straight from the command that made it)
OUTBOX_EVENTS = frozenset(
    {"ModelRegistered", "ModelPromoted", "ModelRolledBack", "ModelApproved", "ModelRejected"}
    | {cls.name for cls in CANARY_AUDIT_ACTIONS.values()}
)
#: the timers' commands: a sweep of every model (``model=None``) relays every model first
TIMER_COMMANDS = frozenset({"CheckSlos", "RunDriftBatch", "AdvanceCanaries"})
#: the watermark row that marks a registry whose existing models' watermarks were set (not a valid model name)
EPOCH = "_outbox-epoch"
#: evidence keys an audit record holds for itself, not for the event
_OWN_EVIDENCE = frozenset({"revision", "traceparent"})

_ready: weakref.WeakSet[RegistryStore] = weakref.WeakSet()


def event_id(model: str, seq: int) -> str:
    """Return the id of the event of ``model``'s audit record ``seq``."""
    return f"{model}#{seq}"


def event_of(record: AuditRecord) -> Event | None:
    """Return the event that announces ``record``, or None for an action no event announces."""
    ev = record.evidence
    eid = event_id(record.model, record.seq)
    if record.action == "register" and record.to_version is not None:
        return ModelRegistered(
            record.model,
            record.to_version,
            str(ev.get("manifest_digest", "")),
            record.actor,
            str(ev.get("status", "registered")),
            event_id=eid,
        )
    if record.action == "promote" and record.to_version is not None and record.environment:
        return ModelPromoted(
            record.model,
            record.environment,
            record.to_version,
            record.from_version,
            int(ev.get("revision", 0)),
            record.actor,
            record.gate_report_digest or "",
            event_id=eid,
        )
    if (
        record.action == "rollback"
        and record.environment
        and record.from_version is not None
        and record.to_version is not None
    ):
        return ModelRolledBack(
            record.model,
            record.environment,
            record.from_version,
            record.to_version,
            int(ev.get("revision", 0)),
            record.actor,
            record.reason,
            record.trigger,
            {k: v for k, v in ev.items() if k not in _OWN_EVIDENCE},
            event_id=eid,
        )
    if record.action == "approve" and record.to_version is not None and record.environment:
        return ModelApproved(record.model, record.to_version, record.environment, record.actor, event_id=eid)
    if record.action == "reject" and record.to_version is not None:
        return ModelRejected(record.model, record.to_version, record.actor, record.reason, event_id=eid)
    return _canary_event(record, eid)


def _canary_event(record: AuditRecord, eid: str) -> Event | None:
    """The canary event of a ``canary_*`` record (its evidence holds the canary's split and revision)."""
    cls = CANARY_AUDIT_ACTIONS.get(record.action)
    canary = record.evidence.get("canary")
    if cls is None or not isinstance(canary, dict) or not record.environment:
        return None
    extra = (
        {"action": record.action.removeprefix("canary_")} if record.action in ("canary_pause", "canary_resume") else {}
    )
    return cls(
        record.model,
        record.environment,
        int(canary.get("stable_version", 0)),
        int(canary.get("candidate_version", 0)),
        int(canary.get("weight", 0)),
        int(canary.get("revision", 0)),
        record.actor,
        record.reason,
        event_id=eid,
        **extra,
    )


def ready(registry: RegistryStore) -> bool:
    """True when ``registry`` keeps an outbox and its epoch is set (set it now on first use).

    Setting the epoch gives every model already audited a watermark at its chain head, so
    an upgrade never re-sends history. A permanent error (a read-only role) is logged and
    answers False: the caller then publishes directly, as before the outbox. A transient one
    (throttling, an outage) is raised: answering False would publish this command's events
    directly, and a failed publish would then be lost once a later call marks the chain's head
    as published.
    """
    if not registry.supports_outbox:
        return False
    if registry in _ready:
        return True
    try:
        if registry.outbox_watermark(EPOCH) is None:
            for model, head in registry.audit_heads().items():
                if registry.outbox_watermark(model) is None:
                    registry.advance_outbox_watermark(model, head.seq)
            registry.advance_outbox_watermark(EPOCH, 1)
    except Exception as exc:  # any other failure only means "not ready": the old path still publishes
        if isinstance(exc, ModelPilotError) and exc.retryable:
            raise
        log.warning("outbox not ready: %s", exc)
        return False
    _ready.add(registry)
    return True


def relay_model(services: Services, model: str, *, traceparent: str | None = None) -> list[Event]:
    """Publish ``model``'s audited events above its watermark, then move the watermark; return what was sent."""
    if not ready(services.registry):
        return []
    return _relay(services, model, traceparent)[0]


def _relay(
    services: Services, model: str, traceparent: str | None, *, announced: Sequence[Event] = ()
) -> tuple[list[Event], int]:
    """Relay ``model``; return the events sent and the chain head's ``seq`` it saw (0: no chain).

    A relayed event marked ``notify`` (a rollback) is also sent to the notifier, unless it is in
    ``announced`` (the command's own events: the bus notifies those itself).
    """
    registry = services.registry
    head = registry.audit_head(model)
    if head is None:
        return [], 0
    start = registry.outbox_watermark(model) or 0
    if head.seq <= start:
        return [], head.seq
    records = registry.audit_records_after(model, start)
    if not records:
        return [], head.seq
    events = [e for e in (event_of(r) for r in records) if e is not None]
    if events:
        services.publisher.publish(events, traceparent=traceparent)
        for event in events:
            if event.notify and event not in announced:
                services.notifier.notify(
                    f"[modelpilot] {event.name}", event.summary(), attributes={"event": event.name}
                )
    last = max(r.seq for r in records)
    registry.advance_outbox_watermark(model, last)
    if events:
        log.info(
            "outbox published %d event(s) of %s up to seq %d",
            len(events),
            model,
            last,
            extra={"modelpilot": {"model": model, "events": len(events)}},
        )
    return events, max(last, head.seq)


def relay(services: Services, model: str | None = None) -> dict[str, int]:
    """Relay one model, or every audited model; return the number of events published per model."""
    registry = services.registry
    if not ready(registry):
        return {}
    models = [model] if model is not None else sorted(registry.audit_heads())
    return {m: len(relay_model(services, m)) for m in models}


def before(services: Services, command: Any) -> dict[str, int] | None:
    """Run by the bus before a handler: relay the command's model; return None when the outbox is not in use.

    Returns each model's chain head after that relay (the records the handler adds come after it). A
    failure to publish is logged and never fails the command: the records stay in the outbox.
    """
    registry = services.registry
    if not ready(registry):
        return None
    if type(command).__name__ in TIMER_COMMANDS and getattr(command, "model", None) is None:
        try:  # a timer's sweep of every model: it also sweeps the outbox
            relay(services)
        except Exception as exc:  # the next tick tries again
            log.warning("outbox relay of every model before %s failed: %s", type(command).__name__, exc)
    heads: dict[str, int] = {}
    for model in models_of(command):
        try:
            heads[model] = _relay(services, model, telemetry.current_traceparent())[1]
        except Exception as exc:  # the next command, a timer or `outbox relay` sends them
            log.warning("outbox relay of %s before %s failed: %s", model, type(command).__name__, exc)
    return heads


def after(services: Services, command: Any, outcome: Any, heads: dict[str, int]) -> list[Event]:
    """Run by the bus after a handler: relay the models it touched; return the events to publish directly.

    Those are the events outside the outbox, and any audited-kind event that no audit record of this
    command stands for (nothing in the chain would ever send it). A failure to publish is raised when the
    command produced audited events (the platform retries; the retry's relay sends them), else logged.
    """
    own = [e for e in outcome.events if e.name in OUTBOX_EVENTS]
    relayed: list[Event] = []
    for model in models_of(command, outcome):
        try:
            relayed.extend(_relay(services, model, telemetry.current_traceparent(), announced=own)[0])
        except Exception as exc:
            if own:
                raise
            log.warning("outbox relay of %s after %s failed: %s", model, type(command).__name__, exc)
    missing = [e for e in own if e not in relayed]
    if missing:  # sent by a concurrent relay, or never audited: look in this command's records
        chained: list[Event] = []
        for model in {str(getattr(e, "model", "")) for e in missing}:
            records = services.registry.audit_records_after(model, heads.get(model, 0))
            chained.extend(e for e in (event_of(r) for r in records) if e is not None)
        missing = [e for e in missing if e not in chained]
    return [e for e in outcome.events if e.name not in OUTBOX_EVENTS or e in missing]


def models_of(command: Any, outcome: Any = None) -> list[str]:
    """Return the models a command (and its outcome and events) is about, in first-seen order."""
    found: list[str] = []
    candidates: list[Any] = [getattr(command, "model", None)]
    if outcome is not None:
        candidates.append(outcome.data.get("model"))
        candidates.extend(getattr(e, "model", None) for e in outcome.events)
    for name in candidates:
        if isinstance(name, str) and name and name not in found:
            found.append(name)
    return found
