"""The local event log and notifier: events go to a JSON-lines file in the home folder.

The in-process reactions run through the message bus itself; this log is what a
later reader (``modelpilot events``, tests, the demo's timeline) sees.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from modelpilot.domain.model import utcnow
from modelpilot.exceptions import TransientError
from modelpilot.ports import EventPublisher, Notifier

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelpilot.domain.events import Event

__all__ = ["JsonlEventLog", "JsonlNotifier"]

_lock = threading.Lock()


def _append(path: Path, entry: dict[str, object]) -> None:
    line = json.dumps(entry, default=str, sort_keys=True) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock, path.open("a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError as exc:  # the log is this backend's bus: not writable now means unavailable
        raise TransientError(f"cannot append to {path}: {exc.strerror or exc}", path=str(path)) from exc


class JsonlEventLog(EventPublisher):
    """Appends every published event to ``path`` as one JSON line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def publish(self, events: Sequence[Event], *, traceparent: str | None = None) -> None:
        for event in events:
            entry: dict[str, object] = {
                "at": utcnow().isoformat(),
                "type": event.name,
                "traceparent": traceparent,
                "detail": event.to_dict(),
            }
            if event.event_id is not None:  # the outbox's id: a reader drops a line whose id it has seen
                entry["id"] = event.event_id
            _append(self.path, entry)

    def read(self) -> list[dict[str, object]]:
        """Return every logged event, oldest first."""
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line]


class JsonlNotifier(Notifier):
    """Appends every notification to ``path`` as one JSON line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def notify(self, subject: str, message: str, *, attributes: dict[str, str] | None = None) -> None:
        _append(
            self.path,
            {"at": utcnow().isoformat(), "subject": subject, "message": message, "attributes": attributes or {}},
        )
