"""The message bus: one handler per command, in-process reactions to events.

``MessageBus.handle(command)`` runs the command's handler inside a span named
after the command, then for every event the handler produced: publishes it
(EventBridge / Event Grid / in-process), notifies humans for events marked
``notify``, and runs the in-process reactions registered for it (for example the
rollback policy reacting to ``SloBurnAlert``). Handler errors are never
swallowed: a failed rollback surfaces so the platform retries it.

Audited events (registrations, promotions, rollbacks, approvals, rejections) are
published through the outbox (:mod:`modelpilot.service.outbox`): rebuilt from the
audit chain, with the id ``<model>#<seq>``, by a relay before and after the handler,
so a crash or a failed publish after the commit is repaired by the next run.

Handlers are referenced as ``"module:function"`` strings and imported on first
use, so a function that never runs drift pays nothing for numpy.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from modelpilot import telemetry
from modelpilot.domain.model import utcnow
from modelpilot.service import outbox
from modelpilot.service.limits import check_command

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.commands import Command
    from modelpilot.domain.events import Event
    from modelpilot.policy import Policy
    from modelpilot.ports import (
        AlarmTags,
        ArtifactStore,
        EventPublisher,
        IdempotencyStore,
        LifecycleSync,
        MetricsSource,
        MlflowRegistry,
        Notifier,
        RegistryStore,
        SecretsProvider,
        TelemetryIngest,
        TrafficRouter,
    )

__all__ = ["COMMAND_HANDLERS", "EVENT_HANDLERS", "MessageBus", "Outcome", "Services"]

log = telemetry.get_logger("modelpilot.bus")

#: command class name → "module:function"
COMMAND_HANDLERS: dict[str, str] = {
    "RegisterModel": "modelpilot.service.lifecycle:register_model",
    "PromoteModel": "modelpilot.service.lifecycle:promote_model",
    "ApproveModel": "modelpilot.service.lifecycle:approve_model",
    "RejectModel": "modelpilot.service.lifecycle:reject_model",
    "RollbackModel": "modelpilot.service.lifecycle:rollback_model",
    "RecordMonitorStatus": "modelpilot.service.lifecycle:record_monitor_status",
    "BuildReferenceProfile": "modelpilot.service.drift.handlers:build_reference_profile",
    "RunDriftBatch": "modelpilot.service.drift.handlers:run_drift_batch",
    "MergeDriftWindow": "modelpilot.service.drift.handlers:merge_drift_window",
    "RunQualityBatch": "modelpilot.service.quality.handlers:run_quality_batch",
    "CheckSlos": "modelpilot.service.slo.handlers:check_slos",
    "HandleAlarm": "modelpilot.service.slo.handlers:handle_alarm",
    "ImportMlflowVersion": "modelpilot.service.mlflow.imports:import_mlflow_version",
    "RequestMlflowPromotion": "modelpilot.service.mlflow.sync:request_mlflow_promotion",
    "SetMlflowVersionTag": "modelpilot.service.mlflow.sync:set_mlflow_version_tag",
    "SyncMlflow": "modelpilot.service.mlflow.sync:sync_mlflow",
    "ApplySourceStage": "modelpilot.service.registry_sync:apply_source_stage",
    "AdvanceCanaries": "modelpilot.service.canary:advance_canaries",
    "ChangeCanary": "modelpilot.service.canary:change_canary",
}

#: event class name → in-process reactions ("module:function"), run in order
EVENT_HANDLERS: dict[str, list[str]] = {
    "ModelRegistered": ["modelpilot.service.drift.handlers:on_model_registered"],
    "DriftDetected": ["modelpilot.service.slo.handlers:on_drift_detected"],
    "SloBurnAlert": ["modelpilot.service.slo.handlers:on_slo_burn_alert"],
    "QualityDegraded": ["modelpilot.service.quality.handlers:on_quality_degraded"],
    # write-back to the registries a version is followed in: MLflow aliases (a no-op unless an MLflow server and
    # the policy's mlflow block are configured) and SageMaker lifecycle stages (a no-op unless the version came
    # from SageMaker and its model's policy maps stages) and Azure ML version tags (policy: azureml)
    "ModelPromoted": [
        "modelpilot.service.mlflow.sync:on_model_promoted",
        "modelpilot.service.registry_sync:on_model_promoted",
        "modelpilot.service.azureml_sync:on_model_promoted",
    ],
    "PromotionBlocked": [
        "modelpilot.service.mlflow.sync:on_promotion_blocked",
        "modelpilot.service.registry_sync:on_promotion_blocked",
        "modelpilot.service.azureml_sync:on_promotion_blocked",
    ],
    "ModelRolledBack": [
        "modelpilot.service.mlflow.sync:on_model_rolled_back",
        "modelpilot.service.registry_sync:on_model_rolled_back",
        "modelpilot.service.azureml_sync:on_model_rolled_back",
    ],
}


@dataclass
class Services:
    """Everything a handler may use: the adapters of every port, the policy and the clock.

    Assembled only by ``modelpilot.bootstrap`` (the composition root) from the adapters
    a backend's wiring provides; handlers never build an adapter themselves.
    """

    registry: RegistryStore
    artifacts: ArtifactStore
    publisher: EventPublisher
    notifier: Notifier
    policy_loader: Callable[[], Policy]
    clock: Callable[[], datetime] = utcnow
    idempotency: IdempotencyStore | None = None
    secrets: SecretsProvider | None = None
    #: SLO metric sources by name ("local", "cloudwatch", "prometheus", "azure_monitor")
    metrics_sources: dict[str, MetricsSource] = field(default_factory=dict)
    #: reads a cloud alarm's tags (the alarm function maps alarms to models by them); None where alarms carry none
    alarm_tags: AlarmTags | None = None
    #: takes request/feedback telemetry into the store the "local" metrics source reads (local backend only)
    telemetry_ingest: TelemetryIngest | None = None
    #: the MLflow registry ModelPilot follows and writes back to; None when no server is configured
    mlflow: MlflowRegistry | None = None
    #: write-back of promotions, blocks and rollbacks to the registry a version came from, by source ("sagemaker")
    lifecycle_sync: dict[str, LifecycleSync] = field(default_factory=dict)
    #: where drift reports, profiles and captures live (an artifact-store URI)
    data_root: str = ""
    #: where serving manifests are written (``serving/<model>/<env>.json`` below it); None: nowhere
    serving_root: str | None = None
    #: told the number of rows read as a drift batch goes (the CLI's progress bar); None: nobody listens
    drift_progress: Callable[[int], None] | None = None
    #: reads a drift window's batches in parallel (``modelpilot drift run --workers N``); None: one pass.
    #: A ``modelpilot.service.drift.fanout.PartialRunner`` (typed loosely: the bus imports no drift module)
    drift_runner: Any = None
    #: starts a window above its ``min_bytes`` on the cloud's engine (a ``modelpilot.ports.FanOutStarter``);
    #: None: every window is read inline
    drift_fanout: Any = None
    #: serving platforms a canary's split is applied to, besides the serving manifest
    traffic_routers: list[TrafficRouter] = field(default_factory=list)

    @property
    def policy(self) -> Policy:
        """The current policy (the loader caches it)."""
        return self.policy_loader()


#: every status word a handler (or the dispatch around it) replies with
OutcomeStatus = Literal[
    # the registry lifecycle
    "registered",
    "approved_in_source",
    "promoted",
    "blocked",
    "dry_run",
    "approved",
    "rejected",
    "rolled_back",
    "recorded",
    # drift
    "built",
    "profile_failed",
    "drift",
    "partial",
    "ok",
    # model quality
    "degraded",
    # SLOs
    "checked",
    "skipped",
    # canaries
    "canary_started",
    "advanced",
    "held",
    "analysis_failed",
    "aborted",
    "paused",
    "resumed",
    # nothing to do, or already done
    "unchanged",
    "noop",
    # the dispatch: a permanently bad event, or one that is not ours
    "failed",
    "ignored",
]


@dataclass
class Outcome:
    """What a handler did: a status word, a human message, data, and the events it produced."""

    status: OutcomeStatus
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    #: outcomes of commands run in reaction to this one's events
    follow_ups: list[Outcome] = field(default_factory=list)
    #: events the handler published itself before its commit marker (the drift batch); the bus only
    #: notifies and reacts to them
    published: list[Event] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when the handler changed state."""
        unchanged: frozenset[OutcomeStatus] = frozenset(
            {"unchanged", "noop", "blocked", "skipped", "dry_run", "ok", "failed", "ignored"}
        )
        return self.status not in unchanged

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        data: dict[str, Any] = {"status": self.status, "message": self.message, **self.data}
        if self.events:
            data["events"] = [e.to_dict() for e in self.events]
        if self.follow_ups:
            data["follow_ups"] = [f.to_dict() for f in self.follow_ups]
        return data


Handler = Callable[[Any, Services], Outcome]
Reaction = Callable[[Any, "MessageBus"], "Outcome | None"]


def _resolve(ref: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module_name), attr)  # type: ignore[no-any-return]


def _attributes(command: Command) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key in ("model", "version", "environment", "actor", "trigger", "to_version", "from_version"):
        value = getattr(command, key, None)
        if value is not None:
            attrs[f"modelpilot.{key}"] = value
    return attrs


def _labels(outcome: Outcome) -> dict[str, Any]:
    """The model, environment and version an outcome is about (labels of its log line)."""
    return {k: outcome.data[k] for k in ("model", "environment", "version") if outcome.data.get(k) is not None}


class MessageBus:
    """Dispatches commands to handlers and events to publishers and reactions."""

    def __init__(
        self,
        services: Services,
        *,
        command_handlers: dict[str, str] | None = None,
        event_handlers: dict[str, list[str]] | None = None,
        react: bool = True,
    ) -> None:
        self.services = services
        self._command_refs = dict(COMMAND_HANDLERS if command_handlers is None else command_handlers)
        refs = EVENT_HANDLERS if event_handlers is None else event_handlers
        self._event_refs = {k: list(v) for k, v in refs.items()}
        self._resolved: dict[str, Callable[..., Any]] = {}
        self.react = react

    def _get(self, ref: str) -> Callable[..., Any]:
        fn = self._resolved.get(ref)
        if fn is None:
            fn = self._resolved[ref] = _resolve(ref)
        return fn

    def handle(self, command: Command) -> Outcome:
        """Run ``command``'s handler, then publish and react to its events; return its outcome."""
        check_command(command)  # a value no store can keep is refused before any handler runs
        name = type(command).__name__
        ref = self._command_refs.get(name)
        if ref is None:
            raise TypeError(f"no handler registered for command {name}")
        handler: Handler = self._get(ref)
        with telemetry.command_span(name, _attributes(command)) as span:
            before = outbox.before(self.services, command)
            outcome = handler(command, self.services)
            span.set_attribute("modelpilot.outcome", outcome.status)
            log.info(
                "handled %s: %s",
                name,
                outcome.message,
                extra={"modelpilot": {"command": name, "status": outcome.status, **_labels(outcome)}},
            )
            # the audited events go out through the outbox (with their ids); the rest straight from here
            direct = outcome.events if before is None else outbox.after(self.services, command, outcome, before)
            direct = [e for e in direct if e not in outcome.published]
            if outcome.events:
                self._dispatch(outcome, direct)
        return outcome

    def _dispatch(self, outcome: Outcome, direct: list[Event]) -> None:
        events = outcome.events
        if direct:
            self.services.publisher.publish(direct, traceparent=telemetry.current_traceparent())
        for event in events:
            if event.notify:
                self.services.notifier.notify(
                    f"[modelpilot] {event.name}", event.summary(), attributes={"event": event.name}
                )
        if not self.react:
            return
        for event in events:
            for ref in self._event_refs.get(event.name, []):
                follow = self._get(ref)(event, self)
                if follow is not None:
                    outcome.follow_ups.append(follow)
