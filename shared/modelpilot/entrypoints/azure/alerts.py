"""Azure Monitor alerts in the common alert schema (an action group's Azure Function or webhook receiver).

An action group with ``useCommonAlertSchema`` posts::

    {"schemaId": "azureMonitorCommonAlertSchema",
     "data": {"essentials": {"alertId": "/subscriptions/…/alerts/…", "alertRule": "modelpilot-churn-prod-…",
                             "severity": "Sev1", "signalType": "Log", "monitorCondition": "Fired",
                             "firedDateTime": "…", "resolvedDateTime": "…", "alertTargetIDs": [...], …},
              "alertContext": {…}, "customProperties": {"modelpilot:model": "churn",
                                                        "modelpilot:environment": "prod"}}}

The alert belongs to a model and environment by its custom properties (the action's
``customProperties`` of a scheduled-query rule, the ``webHookProperties`` of a metric alert):
``modelpilot:model`` and ``modelpilot:environment`` (or ``modelpilot_model``/``modelpilot_environment``,
for tools that refuse a colon), as ``modelpilot slo rules --format azure-monitor`` sets them.
An alert that names neither is ignored. ``Fired`` is the state ``ALARM``, ``Resolved`` is ``OK``;
the alarm name the rollback policy matches (``rollback.<env>.alarms``) is the alert rule's name.
The business key is the alert id plus its condition and time, so a redelivered notification
changes nothing.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelpilot.domain.commands import HandleAlarm
from modelpilot.entrypoints.azure.envelope import validation_message
from modelpilot.entrypoints.azure.events import Translation
from modelpilot.exceptions import InvalidEvent

__all__ = ["ACTOR", "SCHEMA_ID", "CommonAlert", "alert_command", "parse_alert"]

ACTOR = "system:azure-monitor"
SCHEMA_ID = "azureMonitorCommonAlertSchema"
_MODEL_KEYS = ("modelpilot:model", "modelpilot_model")
_ENVIRONMENT_KEYS = ("modelpilot:environment", "modelpilot_environment")


class _Essentials(BaseModel):
    model_config = ConfigDict(extra="allow")
    alertId: str = Field(min_length=1)
    alertRule: str = Field(min_length=1)
    monitorCondition: Literal["Fired", "Resolved"]
    firedDateTime: str = Field(min_length=1)
    resolvedDateTime: str | None = None
    severity: str = ""
    signalType: str = ""
    monitoringService: str = ""
    alertTargetIDs: list[str] = Field(default_factory=list)
    description: str | None = ""


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")
    essentials: _Essentials
    alertContext: dict[str, Any] | None = None
    customProperties: dict[str, Any] | None = None


class CommonAlert(BaseModel):
    """An Azure Monitor notification in the common alert schema."""

    model_config = ConfigDict(extra="allow")
    schemaId: Literal["azureMonitorCommonAlertSchema"]
    data: _Data


def parse_alert(body: bytes | str) -> CommonAlert:
    """Validate a common-alert-schema body; raise ``InvalidEvent`` naming what is wrong."""
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        raise InvalidEvent("Azure Monitor alert: the body is not JSON") from None
    except RecursionError:
        raise InvalidEvent("Azure Monitor alert: the body is nested too deeply") from None
    try:
        return CommonAlert.model_validate(payload)
    except ValidationError as exc:
        raise InvalidEvent(f"Azure Monitor alert (common alert schema): {validation_message(exc)}") from None


def _first(properties: dict[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = str(properties.get(key) or "").strip()
        if value:
            return value
    return ""


def alert_command(body: bytes | str) -> Translation | None:
    """Translate an alert into ``HandleAlarm`` for its model and environment; None when it names neither."""
    alert = parse_alert(body)
    essentials = alert.data.essentials
    properties = alert.data.customProperties or {}
    model, environment = _first(properties, _MODEL_KEYS), _first(properties, _ENVIRONMENT_KEYS)
    if not model or not environment:
        return None
    fired = essentials.monitorCondition == "Fired"
    when = essentials.firedDateTime if fired else (essentials.resolvedDateTime or essentials.firedDateTime)
    key = f"azure-alert:{essentials.alertId}#{essentials.monitorCondition}@{when}"
    return Translation(
        HandleAlarm(
            model=model,
            environment=environment,
            alarm_name=essentials.alertRule,
            state="ALARM" if fired else "OK",
            actor=ACTOR,
            reason=f"Azure Monitor alert {essentials.alertRule} {essentials.monitorCondition.lower()}",
            trigger=key,
            evidence={
                "alert_id": essentials.alertId,
                "severity": essentials.severity,
                "signal_type": essentials.signalType,
                "targets": essentials.alertTargetIDs[:5],
                "fired_at": essentials.firedDateTime,
            },
        ),
        key,
    )
