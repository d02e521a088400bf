"""CloudWatch alarms: the EventBridge "CloudWatch Alarm State Change" event and the SNS-wrapped notification.

An alarm belongs to a model and environment by its name,
``modelpilot/<model>/<environment>[/<anything>]`` (for example
``modelpilot/churn/prod/error-rate``), or else by its tags ``modelpilot:model``
and ``modelpilot:environment``, read through an :data:`AlarmTagReader` (on AWS
``Services.alarm_tags``, :class:`modelpilot.adapters.aws.alarm_tags.CloudWatchAlarmTags`).
The name wins when it follows the convention; tags are read only otherwise.
Alarms mapped neither way are ignored. The idempotency key and the command's
trigger are the alarm name, its new state and the state-change timestamp
(``alarm:<name>#<STATE>@<time>``), so a redelivered notification changes nothing
and an ``OK`` never masks an ``ALARM`` stamped with the same time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from modelpilot.domain.commands import HandleAlarm
from modelpilot.entrypoints._validation import validate
from modelpilot.exceptions import InvalidEvent
from modelpilot.service.dispatch import Delivery

__all__ = [
    "ACTOR",
    "ENVIRONMENT_TAG",
    "MODEL_TAG",
    "NAME_PREFIX",
    "Alarm",
    "AlarmEvent",
    "AlarmTagReader",
    "SnsAlarmMessage",
    "deliveries",
    "find_target",
    "parse_alarms",
    "tag_target",
    "target",
    "to_command",
]

ACTOR = "system:cloudwatch"
NAME_PREFIX = "modelpilot/"
MODEL_TAG = "modelpilot:model"
ENVIRONMENT_TAG = "modelpilot:environment"

#: reads the tags of the alarm with this ARN (empty when it has none that can be read); raises
#: ``TransientError`` when the lookup may succeed on a retry
AlarmTagReader: TypeAlias = Callable[[str], Mapping[str, str]]


class _State(BaseModel):
    model_config = ConfigDict(extra="allow")
    value: str = Field(min_length=1)
    reason: str = ""
    timestamp: str = Field(min_length=1)


class _AlarmDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    alarmName: str = Field(min_length=1)
    state: _State
    previousState: _State | None = None


class AlarmEvent(EventBridgeModel):
    """The EventBridge alarm state change with a typed ``detail``."""

    detail_type: Literal["CloudWatch Alarm State Change"] = Field(alias="detail-type")
    detail: _AlarmDetail


class SnsAlarmMessage(BaseModel):
    """The JSON an alarm action publishes to SNS (``Records[].Sns.Message``)."""

    model_config = ConfigDict(extra="allow")
    AlarmName: str = Field(min_length=1)
    NewStateValue: str = Field(min_length=1)
    NewStateReason: str = ""
    StateChangeTime: str = Field(min_length=1)
    AlarmArn: str | None = None


@dataclass(frozen=True)
class Alarm:
    """One alarm state change, whichever way it arrived."""

    name: str
    state: str
    reason: str
    timestamp: str
    arn: str | None

    def idempotency_key(self) -> str:
        """The business key: alarm name + new state + state-change time.

        The state is part of it: an ``OK`` and an ``ALARM`` stamped with the same time are two
        changes, and whichever is delivered first must not mask the other.
        """
        return f"{self.name}#{self.state}@{self.timestamp}"


def parse_alarms(event: Any) -> list[Alarm]:
    """Return the alarm state changes in an EventBridge event or an SNS delivery."""
    if isinstance(event, dict) and "Records" in event:
        from aws_lambda_powertools.utilities.parser.models import SnsModel

        alarms = []
        for record in validate(SnsModel, event, "SNS alarm notification").Records:
            try:
                message = json.loads(str(record.Sns.Message))
            except json.JSONDecodeError:
                raise InvalidEvent(
                    "SNS alarm notification: Sns.Message is not JSON", field="Records.Sns.Message"
                ) from None
            body = validate(SnsAlarmMessage, message, "SNS alarm notification message")
            alarms.append(
                Alarm(
                    body.AlarmName,
                    body.NewStateValue,
                    body.NewStateReason,
                    body.StateChangeTime,
                    body.AlarmArn,
                )
            )
        return alarms
    parsed = validate(AlarmEvent, event, "CloudWatch Alarm State Change event")
    detail = parsed.detail
    arn = parsed.resources[0] if parsed.resources else None
    return [Alarm(detail.alarmName, detail.state.value, detail.state.reason, detail.state.timestamp, arn)]


def target(alarm_name: str) -> tuple[str, str] | None:
    """Return ``(model, environment)`` of an alarm named ``modelpilot/<model>/<environment>[/…]``."""
    if not alarm_name.startswith(NAME_PREFIX):
        return None
    parts = alarm_name[len(NAME_PREFIX) :].split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def tag_target(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """Return ``(model, environment)`` of an alarm tagged ``modelpilot:model`` and ``modelpilot:environment``."""
    model = (tags.get(MODEL_TAG) or "").strip()
    environment = (tags.get(ENVIRONMENT_TAG) or "").strip()
    if not model or not environment:
        return None
    return model, environment


def find_target(alarm: Alarm, tags: AlarmTagReader | None = None) -> tuple[str, str, str] | None:
    """Return ``(model, environment, "name" | "tags")`` of an alarm, else None.

    The name convention wins; the alarm's tags are read (through ``tags``, by the
    alarm's ARN) only when the name does not follow it. A failed tag lookup
    raises whatever ``tags`` raises (``TransientError`` when a retry can help).
    """
    found = target(alarm.name)
    if found is not None:
        return (*found, "name")
    if tags is None or not alarm.arn:
        return None
    found = tag_target(tags(alarm.arn))
    return None if found is None else (*found, "tags")


def to_command(alarm: Alarm, tags: AlarmTagReader | None = None) -> HandleAlarm | None:
    """Return the ``HandleAlarm`` command of an alarm named or tagged for a model, else None."""
    found = find_target(alarm, tags)
    if found is None:
        return None
    model, environment, mapped_by = found
    return HandleAlarm(
        model=model,
        environment=environment,
        alarm_name=alarm.name,
        state=alarm.state,
        actor=ACTOR,
        reason=f"CloudWatch alarm {alarm.name} is {alarm.state}",
        trigger="alarm:" + alarm.idempotency_key(),
        evidence={
            "alarm_arn": alarm.arn,
            "mapped_by": mapped_by,
            "state_reason": alarm.reason[:1000],
            "state_changed_at": alarm.timestamp,
        },
    )


IGNORED = (
    f"names no model/environment: its name is not {NAME_PREFIX}<model>/<environment>/… "
    f"and it has no {MODEL_TAG} and {ENVIRONMENT_TAG} tags"
)


def deliveries(event: Any, tags: AlarmTagReader | None = None) -> list[Delivery]:
    """Return one delivery per alarm of the event: ``HandleAlarm`` for alarms named or tagged for a model.

    A tag lookup that CloudWatch throttles or fails raises ``TransientError``, so the invocation is retried.
    """
    out = []
    for alarm in parse_alarms(event):
        command = to_command(alarm, tags)
        ignored = "" if command is not None else f"alarm {alarm.name} {IGNORED}"
        out.append(Delivery(f"alarm {alarm.name}", command, "alarm:" + alarm.idempotency_key(), ignored))
    return out
