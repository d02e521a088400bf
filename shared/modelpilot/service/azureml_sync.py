"""Azure ML write-back: ModelPilot's promotions, blocks and rollbacks become tags of the registered model version.

The reactions to ``ModelPromoted``, ``PromotionBlocked`` and ``ModelRolledBack`` write, for each version the
event concerns that came from Azure ML (``source == "azureml"``; its ``external_id`` is
``azureml:<workspace>/<model>:<version>``) and when the model's policy has an ``azureml`` block that writes
the environment back, two tags of that Azure ML model version:

================================  ========================================  ==========================
what happened in environment *E*   ``modelpilot.<E>``                         ``modelpilot.<E>.report``
================================  ========================================  ==========================
a version promoted to *E*          ``promoted``                               who, ``sha256:`` of the
                                                                              gate report
the version *E* ran until then     ``replaced``                               by which version, who
a version blocked from *E*         ``blocked``                                failed gates, reasons,
                                                                              ``sha256:`` of the report
a rollback in *E*                  ``rolled_back`` (the version left),        reason and actor
                                   ``restored`` (the version restored)
================================  ========================================  ==========================

The same words as the MLflow write-back, so a version reads the same in both registries. Tags of other
environments and every other tag are kept.

No loop: tag updates of a model version raise no Azure ML Event Grid event (the workspace publishes
``ModelRegistered`` on registration and ``ModelDeployed`` on deployment only; ModelPilot subscribes to
``ModelRegistered``), and even a repeated registration of the same version is the same business key in the
idempotency store and registers nothing twice.

A failed write-back (throttling, a missing version, a refused call) never undoes or fails the decision it
mirrors: ModelPilot's registry is the truth; the failure is logged, notified and reported in the outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot import telemetry
from modelpilot.exceptions import ModelPilotError

if TYPE_CHECKING:
    from modelpilot.domain.events import ModelPromoted, ModelRolledBack, PromotionBlocked
    from modelpilot.service.messagebus import MessageBus, Outcome, Services

__all__ = ["SOURCE", "on_model_promoted", "on_model_rolled_back", "on_promotion_blocked"]

log = telemetry.get_logger("modelpilot.azureml_sync")

SOURCE = "azureml"
MAX_REPORT = 1024


def _fit(text: str, keep: str = "") -> str:
    room = MAX_REPORT - len(keep)
    if len(text) > room:
        text = text[: max(room - 1, 0)] + "…"
    return text + keep


def on_model_promoted(event: ModelPromoted, bus: MessageBus) -> Outcome | None:
    """Tag the promoted version ``promoted`` and the version it replaced ``replaced``."""
    return _write_back(
        bus.services,
        event.model,
        event.environment,
        [
            (
                event.version,
                "promoted",
                _fit(
                    f"v{event.version} promoted to {event.environment} by {event.actor}; gates passed",
                    f"; report sha256:{event.gate_report_digest}",
                ),
            ),
            (
                event.from_version,
                "replaced",
                _fit(f"v{event.from_version} replaced in {event.environment} by v{event.version} ({event.actor})"),
            ),
        ],
    )


def on_promotion_blocked(event: PromotionBlocked, bus: MessageBus) -> Outcome | None:
    """Tag the blocked version ``blocked`` with the failed gates and the report digest."""
    text = f"v{event.version} blocked from {event.environment} ({event.actor}): " + "; ".join(
        f"{g}: {r}" for g, r in zip(event.failed_gates, event.reasons, strict=False)
    )
    return _write_back(
        bus.services,
        event.model,
        event.environment,
        [(event.version, "blocked", _fit(text, f"; report sha256:{event.gate_report_digest}"))],
    )


def on_model_rolled_back(event: ModelRolledBack, bus: MessageBus) -> Outcome | None:
    """Tag the version rolled back ``rolled_back`` and the version restored ``restored``."""
    why = f"by {event.actor}: {event.reason}"
    return _write_back(
        bus.services,
        event.model,
        event.environment,
        [
            (
                event.from_version,
                "rolled_back",
                _fit(f"v{event.from_version} rolled back from {event.environment} to v{event.to_version} {why}"),
            ),
            (event.to_version, "restored", _fit(f"v{event.to_version} restored in {event.environment} {why}")),
        ],
    )


def _write_back(
    svc: Services, model: str, environment: str, items: list[tuple[int | None, str, str]]
) -> Outcome | None:
    """Write each ``(version, status, report)`` as tags; the outcome says what was written or failed."""
    from modelpilot.ports import LifecycleUpdate
    from modelpilot.service.registry_sync import write_back_failed, write_back_outcome

    sync = svc.policy.model_policy(model).azureml
    writer = svc.lifecycle_sync.get(SOURCE)
    if sync is None or writer is None or not sync.writes(environment):
        return None
    written: list[dict[str, object]] = []
    failed: list[dict[str, object]] = []
    for number, status, report in items:
        if number is None:
            continue
        version = svc.registry.get_version(model, number)
        if version.source != SOURCE or not version.external_id:
            continue
        entry: dict[str, object] = {
            "version": number,
            "external_id": version.external_id,
            "environment": environment,
            "status": status,
        }
        try:
            writer.write(
                LifecycleUpdate(
                    external_id=version.external_id, stage=environment, stage_status=status, description=report
                )
            )
        except ModelPilotError as exc:
            failed.append(
                write_back_failed(
                    svc,
                    exc,
                    entry,
                    model=model,
                    environment=environment,
                    registry="Azure ML",
                    what=f"tag {status}",
                    external_id=version.external_id,
                )
            )
            continue
        written.append(entry)
    summary = ", ".join(f"v{w['version']} {w['status']}" for w in written) or "nothing"
    return write_back_outcome(
        f"Azure ML tags of {model} in {environment}: wrote {summary}", model, environment, written, failed
    )
