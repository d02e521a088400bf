"""Drift handlers: build reference profiles, run drift batches, react to registrations.

numpy and the drift engine are imported inside the functions, so importing
``modelpilot.service.*`` stays light (cold start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot import telemetry
from modelpilot.domain.commands import BuildReferenceProfile
from modelpilot.exceptions import InvalidInput, ModelPilotError, UnknownModel
from modelpilot.service.messagebus import Outcome

if TYPE_CHECKING:
    from modelpilot.domain.commands import MergeDriftWindow, RunDriftBatch
    from modelpilot.domain.events import ModelRegistered
    from modelpilot.service.messagebus import MessageBus, OutcomeStatus, Services

__all__ = ["build_reference_profile", "merge_drift_window", "on_model_registered", "run_drift_batch"]

log = telemetry.get_logger("modelpilot.drift")


def build_reference_profile(cmd: BuildReferenceProfile, svc: Services) -> Outcome:
    """Build and store a version's reference profile beside it under ``data_root``."""
    from modelpilot.service.drift.batch import build_profile_for_version

    version = svc.registry.get_version(cmd.model, cmd.version)
    uri, profile, stats = build_profile_for_version(svc, version, cmd.data_uri)
    return Outcome(
        "built",
        f"reference profile of {cmd.model} v{cmd.version} built from {profile.rows} rows "
        f"({len(profile.features)} features, {stats.corrupt_rows} corrupt rows)",
        {
            "model": cmd.model,
            "version": cmd.version,
            "profile_uri": uri,
            "rows": profile.rows,
            "features": list(profile.features),
            "corrupt_rows": stats.corrupt_rows,
            "corrupt_files": stats.corrupt_files,
        },
    )


def run_drift_batch(cmd: RunDriftBatch, svc: Services) -> Outcome:
    """Check every monitored model/environment (or the one named) for the window ending at ``cmd.end``."""
    from modelpilot.service.drift.batch import run_batch

    results, events = run_batch(svc, cmd)
    if not results:
        return Outcome("noop", "no monitored model has a live version to check", {"reports": []})
    lines = [
        f"{r['model']}/{r['environment']} v{r['version']}: "
        + (
            f"failed: {r['error']['message']}"
            if r["status"] == "failed"
            else f"fanned out as {r['execution']} ({r['batches']} batches)"
            if "execution" in r
            else r["severity"]
        )
        + (f" drift on {', '.join(r['drifted_features'])}" if r.get("drifted_features") else "")
        + (" (already checked)" if r["status"] == "unchanged" and "execution" not in r else "")
        + (" (already started)" if r["status"] == "unchanged" and "execution" in r else "")
        for r in results
    ]
    statuses = {r["status"] for r in results}
    status: OutcomeStatus = (
        "drift" if events else "partial" if "failed" in statuses else "unchanged" if statuses == {"unchanged"} else "ok"
    )
    # each report's event went out before its report was committed (merge_window): the bus only notifies and reacts
    return Outcome(status, "; ".join(lines), {"reports": results}, events, published=list(events))


def merge_drift_window(cmd: MergeDriftWindow, svc: Services) -> Outcome:
    """Merge a fanned-out window's partials; write its report, gauges and status; return ``DriftDetected``."""
    from modelpilot.service.drift.fanout import Batch, WindowPlan
    from modelpilot.service.drift.window import load_partial, merge_window

    plan = WindowPlan.from_dict(cmd.plan)
    batches = [Batch.from_dict(b) for b in cmd.batches]
    done = merge_window(svc, plan, batches, [load_partial(svc, plan, ref) for ref in cmd.partials])
    report = done["report"]
    data = {
        "model": plan.model,
        "environment": plan.environment,
        "version": plan.version,
        "report_id": report.report_id,
        "severity": report.severity,
        "drifted_features": report.drifted_features,
        "report_uri": done["json_uri"],
        "html_uri": done["html_uri"],
    }
    drifted = f" drift on {', '.join(report.drifted_features)}" if report.drifted_features else ""
    message = f"{plan.model}/{plan.environment} v{plan.version}: {report.severity}{drifted}"
    if done["status"] == "unchanged":
        message += " (already checked)"
    return Outcome(done["status"], message, {"reports": [data]}, done["events"], published=list(done["events"]))


def on_model_registered(event: ModelRegistered, bus: MessageBus) -> Outcome | None:
    """Build the new version's reference profile when its manifest names reference data.

    A bad reference data set never fails the registration: the error is logged
    and returned as a ``profile_failed`` follow-up; the batch retries the build.
    """
    try:
        version = bus.services.registry.get_version(event.model, event.version)
    except UnknownModel:
        return None
    if not version.manifest.reference_data_uri:
        return None
    try:
        return bus.handle(BuildReferenceProfile(model=event.model, version=event.version, actor=event.actor))
    except (ModelPilotError, InvalidInput) as exc:
        log.warning(
            "reference profile of %s v%s not built: %s",
            event.model,
            event.version,
            exc,
            extra={"modelpilot": {"model": event.model, "version": event.version, "error": exc.code}},
        )
        return Outcome(
            "profile_failed",
            f"reference profile of {event.model} v{event.version} not built: {exc.message}",
            {"model": event.model, "version": event.version, "error": exc.to_dict()},
        )
