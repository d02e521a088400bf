"""Domain events: facts, in the past tense, that handlers emit.

Each event serialises to a flat JSON ``detail`` with :meth:`Event.to_dict`;
``name`` is the ``detail-type`` on EventBridge and the CloudEvents ``type`` suffix
on Event Grid.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "DriftDetected",
    "Event",
    "ModelApproved",
    "ModelPromoted",
    "ModelRegistered",
    "ModelRejected",
    "ModelRolledBack",
    "PromotionBlocked",
    "QualityDegraded",
    "RollbackSkipped",
    "SloBurnAlert",
]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Event:
    """Base class of domain events."""

    name: ClassVar[str] = "Event"
    #: events a human should hear about (SNS / e-mail) as well as machines
    notify: ClassVar[bool] = False
    #: the outbox's id of this event (``<model>#<audit seq>``, :mod:`modelpilot.service.outbox`): the same fact
    #: published twice carries the same id, so consumers drop the copy. None for events outside the outbox
    event_id: str | None = field(default=None, kw_only=True, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the event's JSON detail, with ``event`` set to its name (and ``id`` when it has one)."""
        data: dict[str, Any] = _plain(asdict(self))
        event_id = data.pop("event_id", None)
        data["event"] = self.name
        if event_id is not None:
            data["id"] = event_id
        return data

    def summary(self) -> str:
        """Return one human line describing the event."""
        return self.name


@dataclass(frozen=True)
class ModelRegistered(Event):
    """A new version was registered."""

    name: ClassVar[str] = "ModelRegistered"
    model: str
    version: int
    manifest_digest: str
    actor: str
    status: str = "registered"

    def summary(self) -> str:
        return f"{self.model} v{self.version} registered by {self.actor}"


@dataclass(frozen=True)
class ModelPromoted(Event):
    """An environment's alias moved forward to a version."""

    name: ClassVar[str] = "ModelPromoted"
    model: str
    environment: str
    version: int
    from_version: int | None
    revision: int
    actor: str
    gate_report_digest: str

    def summary(self) -> str:
        return f"{self.model} v{self.version} promoted to {self.environment} by {self.actor}"


@dataclass(frozen=True)
class PromotionBlocked(Event):
    """A promotion failed one or more gates and changed nothing."""

    name: ClassVar[str] = "PromotionBlocked"
    notify: ClassVar[bool] = True
    model: str
    environment: str
    version: int
    actor: str
    failed_gates: list[str]
    reasons: list[str]
    gate_report_digest: str

    def summary(self) -> str:
        return f"promotion of {self.model} v{self.version} to {self.environment} blocked: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class ModelApproved(Event):
    """An approver approved a version for an environment."""

    name: ClassVar[str] = "ModelApproved"
    model: str
    version: int
    environment: str
    approver: str

    def summary(self) -> str:
        return f"{self.model} v{self.version} approved for {self.environment} by {self.approver}"


@dataclass(frozen=True)
class ModelRejected(Event):
    """A version was rejected and can no longer be promoted."""

    name: ClassVar[str] = "ModelRejected"
    model: str
    version: int
    actor: str
    reason: str

    def summary(self) -> str:
        return f"{self.model} v{self.version} rejected by {self.actor}: {self.reason}"


@dataclass(frozen=True)
class ModelRolledBack(Event):
    """An environment's alias moved back to an earlier version."""

    name: ClassVar[str] = "ModelRolledBack"
    notify: ClassVar[bool] = True
    model: str
    environment: str
    from_version: int
    to_version: int
    revision: int
    actor: str
    reason: str
    trigger: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        return (
            f"{self.model} {self.environment} rolled back v{self.from_version} -> v{self.to_version} "
            f"by {self.actor}: {self.reason}"
        )


@dataclass(frozen=True)
class RollbackSkipped(Event):
    """A rollback was asked for but changed nothing (already done, cooldown, no target)."""

    name: ClassVar[str] = "RollbackSkipped"
    model: str
    environment: str
    actor: str
    reason: str

    def summary(self) -> str:
        return f"rollback of {self.model} {self.environment} skipped: {self.reason}"


@dataclass(frozen=True)
class DriftDetected(Event):
    """A drift batch found drift for a model in an environment."""

    name: ClassVar[str] = "DriftDetected"
    notify: ClassVar[bool] = True
    model: str
    environment: str
    version: int | None
    severity: str
    drifted_features: list[str]
    report_id: str
    report_uri: str

    def summary(self) -> str:
        return f"drift ({self.severity}) on {self.model} {self.environment}: " + ", ".join(self.drifted_features)


@dataclass(frozen=True)
class QualityDegraded(Event):
    """A quality batch found a model's quality below its policy in a window: realised or estimated metrics,
    label coverage, prediction drift or feature-attribution drift."""

    name: ClassVar[str] = "QualityDegraded"
    notify: ClassVar[bool] = True
    model: str
    environment: str
    version: int | None
    severity: str
    breaches: list[str]
    report_id: str
    report_uri: str
    window_end: str

    def summary(self) -> str:
        return f"quality ({self.severity}) of {self.model} {self.environment} v{self.version}: " + "; ".join(
            self.breaches[:5]
        )


@dataclass(frozen=True)
class SloBurnAlert(Event):
    """An SLO is burning its error budget faster than a burn-rate rule allows."""

    name: ClassVar[str] = "SloBurnAlert"
    notify: ClassVar[bool] = True
    model: str
    environment: str
    version: int | None
    slo: str
    severity: str
    long_window: str
    short_window: str
    burn_rate_long: float
    burn_rate_short: float
    threshold: float
    budget_remaining: float
    alert_id: str

    def summary(self) -> str:
        return (
            f"SLO {self.slo} on {self.model} {self.environment} {self.severity}: burn rate "
            f"{self.burn_rate_long:.1f} over {self.long_window} and {self.burn_rate_short:.1f} over "
            f"{self.short_window} (threshold {self.threshold}), budget left {self.budget_remaining:.1%}"
        )
