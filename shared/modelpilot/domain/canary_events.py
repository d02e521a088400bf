"""Domain events of canary promotions (see :mod:`modelpilot.domain.canary`).

Each is rebuilt from its audit record by the outbox (:mod:`modelpilot.service.outbox`), so it
is published at least once with the id ``<model>#<seq>``. The audit actions they announce are
in :data:`CANARY_AUDIT_ACTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from modelpilot.domain.events import Event

__all__ = [
    "CANARY_AUDIT_ACTIONS",
    "CanaryAborted",
    "CanaryAdvanced",
    "CanaryChanged",
    "CanaryEvent",
    "CanaryPromoted",
    "CanaryStarted",
]


@dataclass(frozen=True)
class CanaryEvent(Event):
    """What every canary event carries: the two versions, the candidate's weight and the canary's revision."""

    name: ClassVar[str] = "CanaryEvent"
    model: str
    environment: str
    stable_version: int
    candidate_version: int
    weight: int
    revision: int
    actor: str
    reason: str = ""

    def summary(self) -> str:
        return (
            f"canary of {self.model} v{self.candidate_version} in {self.environment}: {self.name} "
            f"at {self.weight}% by {self.actor}" + (f" ({self.reason})" if self.reason else "")
        )


@dataclass(frozen=True)
class CanaryStarted(CanaryEvent):
    """A promotion started as a canary: the candidate takes its first step's weight."""

    name: ClassVar[str] = "CanaryStarted"


@dataclass(frozen=True)
class CanaryAdvanced(CanaryEvent):
    """An analysis passed and the candidate moved to the next step's weight."""

    name: ClassVar[str] = "CanaryAdvanced"


@dataclass(frozen=True)
class CanaryAborted(CanaryEvent):
    """The canary ended without promotion (failed analyses or an operator): the candidate is back at 0 %."""

    name: ClassVar[str] = "CanaryAborted"
    notify: ClassVar[bool] = True


@dataclass(frozen=True)
class CanaryPromoted(CanaryEvent):
    """The canary reached 100 % and the environment's alias moved to the candidate."""

    name: ClassVar[str] = "CanaryPromoted"


@dataclass(frozen=True)
class CanaryChanged(CanaryEvent):
    """An operator paused or resumed the canary (``action``)."""

    name: ClassVar[str] = "CanaryChanged"
    action: str = ""


#: audit action → the event class that announces it (``canary_analysis``: a hold or a counted failure, no event)
CANARY_AUDIT_ACTIONS: dict[str, type[CanaryEvent]] = {
    "canary_start": CanaryStarted,
    "canary_advance": CanaryAdvanced,
    "canary_abort": CanaryAborted,
    "canary_promote": CanaryPromoted,
    "canary_pause": CanaryChanged,
    "canary_resume": CanaryChanged,
}
