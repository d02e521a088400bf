"""Quality handlers: run the quality batch; roll back on a critical quality breach when the policy says so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.service.messagebus import Outcome

if TYPE_CHECKING:
    from modelpilot.domain.commands import RunQualityBatch
    from modelpilot.domain.events import QualityDegraded
    from modelpilot.service.messagebus import MessageBus, OutcomeStatus, Services

__all__ = ["on_quality_degraded", "run_quality_batch"]


def run_quality_batch(cmd: RunQualityBatch, svc: Services) -> Outcome:
    """Join, measure and judge the windows of every monitored model/environment (or the one named)."""
    from modelpilot.service.quality.batch import run_batch

    results, events = run_batch(svc, cmd)
    if not results:
        return Outcome("noop", "no model with a quality policy has a live version to check", {"windows": []})
    lines = [
        f"{r['model']}/{r['environment']} v{r['version']}"
        + (
            f": failed: {r['error']['message']}"
            if r["status"] == "failed"
            else f" window to {r['window_end']}: {r['severity']}, {r['labelled']}/{r['predictions']} labelled"
            + (" (already checked)" if r["status"] == "unchanged" else "")
        )
        for r in results
    ]
    statuses = {r["status"] for r in results}
    status: OutcomeStatus = (
        "degraded"
        if events
        else "partial"
        if "failed" in statuses
        else "unchanged"
        if statuses == {"unchanged"}
        else "ok"
    )
    return Outcome(status, "; ".join(lines), {"windows": results}, events)


def on_quality_degraded(event: QualityDegraded, bus: MessageBus) -> Outcome | None:
    """Roll back on a critical breach when the model's ``quality.rollback`` is on.

    The environment's rollback policy (or the defaults) supplies the cooldown and the never-onto-a-breached-
    version rule; the rollback is conditional on the breaching version and idempotent on the report.
    """
    from modelpilot.policy.slo import RollbackPolicy
    from modelpilot.service.slo.rollback import apply_rollback, plan_rollback, rollback_policy

    svc = bus.services
    block = svc.policy.model_policy(event.model).quality
    if block is None or not block.rollback or event.severity != "critical":
        return None
    policy = rollback_policy(svc, event.model, event.environment) or RollbackPolicy()
    plan = plan_rollback(
        svc,
        model=event.model,
        environment=event.environment,
        from_version=event.version,
        policy=policy,
        actor="system:quality",
        trigger=f"quality:{event.report_id}",
        reason=event.summary(),
        evidence={"quality": event.to_dict()},
    )
    return apply_rollback(bus, plan, alert_at=None)
