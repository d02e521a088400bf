"""Timers and console invocations of the drift, SLO and canary functions.

EventBridge Scheduler sends the ``Input`` the template configures::

    {"schedule_arn": "<aws.scheduler.schedule-arn>", "scheduled_time": "<aws.scheduler.scheduled-time>",
     "execution_id": "<aws.scheduler.execution-id>", "attempt": "<aws.scheduler.attempt-number>"}

``execution_id`` changes on every retry, so the idempotency key is the schedule
ARN plus the scheduled time. An EventBridge *rule* schedule ("Scheduled Event")
is accepted too (key: rule ARN + time). Operators may invoke the functions by
hand with ``{"action": "drift", "model": "churn", "environment": "prod"}`` or
``{"action": "slo_check", ...}`` or ``{"action": "canary_tick", ...}``; those are keyed on the
invocation's request id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelpilot.domain.commands import AdvanceCanaries, CheckSlos, RunDriftBatch
from modelpilot.entrypoints._validation import validate
from modelpilot.exceptions import InvalidEvent
from modelpilot.service.dispatch import Delivery

__all__ = [
    "ACTOR",
    "ConsoleCanary",
    "ConsoleDrift",
    "ConsoleSlo",
    "ScheduledInput",
    "Tick",
    "canary_command",
    "canary_delivery",
    "drift_command",
    "drift_delivery",
    "parse_tick",
    "slo_command",
    "slo_delivery",
]

ACTOR = "system:scheduler"


class ScheduledInput(BaseModel):
    """The Scheduler target input (context attributes filled in by EventBridge Scheduler)."""

    model_config = ConfigDict(extra="forbid")
    schedule_arn: str = Field(pattern=r"^arn:aws[a-z-]*:scheduler:")
    scheduled_time: datetime
    execution_id: str | None = None
    attempt: int | None = None
    model: str | None = None
    environment: str | None = None


class _RuleSchedule(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    source: Literal["aws.events"]
    time: datetime
    resources: list[str] = Field(min_length=1)


class ConsoleDrift(BaseModel):
    """``{"action": "drift", ...}``: run the drift batch now."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["drift"]
    model: str | None = None
    environment: str | None = None
    window_seconds: int = Field(default=86400, gt=0)
    data_uri: str | None = None


class ConsoleSlo(BaseModel):
    """``{"action": "slo_check", ...}``: evaluate the SLOs now."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["slo_check"]
    model: str | None = None
    environment: str | None = None


class ConsoleCanary(BaseModel):
    """``{"action": "canary_tick", ...}``: analyse and advance the due canaries now (one, with model/environment)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["canary_tick"]
    model: str | None = None
    environment: str | None = None


class Tick:
    """A timer firing: when, which schedule, and for which model/environment (None = all)."""

    def __init__(
        self,
        key: dict[str, str],
        at: datetime | None,
        trigger: str,
        actor: str,
        model: str | None = None,
        environment: str | None = None,
        extra: dict[str, Any] | None = None,
    ):
        self.key, self.at, self.trigger, self.actor = key, at, trigger, actor
        self.model, self.environment, self.extra = model, environment, extra or {}


def parse_tick(event: Any, console: type[BaseModel], *, request_id: str, console_actor: str) -> Tick:
    """Return the tick of a Scheduler input, a rule schedule, or a console payload of type ``console``."""
    if not isinstance(event, dict):
        raise InvalidEvent("expected a JSON object", field="<root>")
    if "schedule_arn" in event:
        sched = validate(ScheduledInput, event, "EventBridge Scheduler input")
        stamp = sched.scheduled_time.isoformat()
        return Tick(
            {"schedule": sched.schedule_arn, "at": stamp},
            sched.scheduled_time,
            f"schedule:{sched.schedule_arn}@{stamp}",
            ACTOR,
            sched.model,
            sched.environment,
        )
    if event.get("detail-type") == "Scheduled Event":
        rule = validate(_RuleSchedule, event, "EventBridge Scheduled Event")
        stamp = rule.time.isoformat()
        return Tick(
            {"schedule": rule.resources[0], "at": stamp},
            rule.time,
            f"schedule:{rule.resources[0]}@{stamp}",
            ACTOR,
        )
    if "action" in event:
        payload = validate(console, event, "console payload")
        data = payload.model_dump(exclude={"action"})
        return Tick(
            {"request": request_id},
            None,
            f"console:{request_id}",
            console_actor,
            data.pop("model", None),
            data.pop("environment", None),
            data,
        )
    raise InvalidEvent(
        "expected an EventBridge Scheduler input (schedule_arn, scheduled_time), a Scheduled Event "
        "or a console payload with 'action'",
        field="<root>",
    )


def drift_command(tick: Tick) -> RunDriftBatch:
    """Return the drift batch a tick asks for."""
    return RunDriftBatch(
        actor=tick.actor,
        model=tick.model,
        environment=tick.environment,
        end=tick.at,
        trigger=tick.trigger,
        window_seconds=int(tick.extra.get("window_seconds", 86400)),
        data_uri=tick.extra.get("data_uri"),
    )


def slo_command(tick: Tick) -> CheckSlos:
    """Return the SLO check a tick asks for."""
    return CheckSlos(
        actor=tick.actor, model=tick.model, environment=tick.environment, now=tick.at, trigger=tick.trigger
    )


def drift_delivery(event: Any, *, request_id: str, console_actor: str) -> Delivery:
    """Return the drift batch a Scheduler tick or console payload asks for, once per (schedule, time) or request."""
    tick = parse_tick(event, ConsoleDrift, request_id=request_id, console_actor=console_actor)
    return Delivery(tick.trigger, drift_command(tick), f"drift:{tick.trigger}")


def slo_delivery(event: Any, *, request_id: str, console_actor: str) -> Delivery:
    """Return the SLO check a Scheduler tick or console payload asks for, once per (schedule, time) or request."""
    tick = parse_tick(event, ConsoleSlo, request_id=request_id, console_actor=console_actor)
    return Delivery(tick.trigger, slo_command(tick), f"slo:{tick.trigger}")


def canary_command(tick: Tick) -> AdvanceCanaries:
    """Return the canary tick a timer (or console payload) asks for."""
    return AdvanceCanaries(actor=tick.actor, model=tick.model, environment=tick.environment, trigger=tick.trigger)


def canary_delivery(event: Any, *, request_id: str, console_actor: str) -> Delivery:
    """Return the canary tick a Scheduler tick or console payload asks for, once per (schedule, time) or request."""
    tick = parse_tick(event, ConsoleCanary, request_id=request_id, console_actor=console_actor)
    return Delivery(tick.trigger, canary_command(tick), f"canary:{tick.trigger}")
