"""Events and notifications as JSON log lines: the publisher and notifier of a cloud backend with no
event bus, topic or Event Grid endpoint configured (the CLI against a stack, a function app without a
topic). Nothing is lost silently: every event and notification is a log line the platform keeps
(CloudWatch Logs, Application Insights), where alerts can match them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.ports import EventPublisher, Notifier
from modelpilot.telemetry import get_logger

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelpilot.domain.events import Event

__all__ = ["LogNotifier", "LogPublisher"]


class LogPublisher(EventPublisher):
    """Writes each event as a WARNING JSON log line (``modelpilot.events``), with its traceparent: with no bus
    configured nobody consumes it, so it must not vanish below the default log level."""

    def publish(self, events: Sequence[Event], *, traceparent: str | None = None) -> None:
        log = get_logger("modelpilot.events")
        for event in events:
            log.warning(
                "event %s (no event bus configured: logged, not delivered)",
                event.name,
                extra={"modelpilot": {"event": event.to_dict(), "traceparent": traceparent}},
            )


class LogNotifier(Notifier):
    """Writes each notification as a WARNING log line (``modelpilot.notifications``).

    A notification the log already holds is not written again, so each warning is one line:
    a rejected event (``attributes`` with ``error``: the dispatch logged it as an ERROR line),
    and, with ``events_logged`` (the publisher is a :class:`LogPublisher`), an event's notification.
    """

    def __init__(self, *, events_logged: bool = False) -> None:
        self.events_logged = events_logged

    def notify(self, subject: str, message: str, *, attributes: dict[str, str] | None = None) -> None:
        attributes = attributes or {}
        if "error" in attributes or (self.events_logged and "event" in attributes):
            return
        get_logger("modelpilot.notifications").warning(
            "%s: %s", subject, message, extra={"modelpilot": {"notification": attributes}}
        )
