"""The drift batch on the service's ports: window → report, metrics, status, event.

Called by :mod:`modelpilot.service.drift.handlers` (which stays free of numpy
at import). Where profiles, captures and reports live: :mod:`modelpilot.service.drift.store`;
the plan → partial → merge steps every runner shares: :mod:`modelpilot.service.drift.window`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.service.drift.fanout import plan_batches
from modelpilot.service.drift.store import build_profile_for_version, load_reference, profile_uri, report_uris
from modelpilot.service.drift.window import (
    execution_input,
    execution_name,
    existing_result,
    hour_prefixes,
    merge_window,
    orchestration_input,
    plan_window,
    run_partial,
    window_id,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from modelpilot.domain.model import ModelVersion
    from modelpilot.ports import FanOutStarter
    from modelpilot.service.drift.fanout import PartialRunner, WindowPlan
    from modelpilot.service.messagebus import Services

__all__ = [
    "build_profile_for_version",
    "fan_out",
    "hour_prefixes",
    "load_reference",
    "profile_uri",
    "report_uris",
    "run_batch",
    "run_one",
    "targets",
]

log = telemetry.get_logger("modelpilot.drift")

#: a fanned-out window is split into about this many batches per worker (load balance against per-batch overhead)
BATCHES_PER_WORKER = 4
#: and no batch reads more than this many bytes
MAX_BATCH_BYTES = 512 * 1024 * 1024


def run_one(
    svc: Services,
    version: ModelVersion,
    environment: str,
    *,
    end: datetime,
    window_seconds: int,
    data_uri: str | None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Check one model/environment's window; write the report, metrics, status and event. Idempotent.

    With ``svc.drift_runner`` set (``modelpilot drift run --workers N``) the window is
    split into batches read by the runner's workers; otherwise one pass reads it all.
    Both go through the same partial/merge path and give the same report.

    With ``svc.drift_fanout`` set (AWS: the drift state machine) a window of more than its
    ``min_bytes`` is not read here: it is split into batches of at most ``min_bytes`` and the
    fan-out is started under the window's own name (a retried tick starts it once); the
    state machine's merge then reports, as :func:`merge_window` does here.
    """
    rid = window_id(version, environment, end=end, window_seconds=window_seconds, data_uri=data_uri)
    done = existing_result(svc, (version.model, environment, rid))
    if done is not None:
        return done
    plan = plan_window(svc, version, environment, end=end, window_seconds=window_seconds, data_uri=data_uri)
    runner: PartialRunner | None = svc.drift_runner
    starter: FanOutStarter | None = svc.drift_fanout
    if (
        runner is None
        and starter is not None
        and plan.total_bytes > starter.min_bytes
        and len(plan.files) > 1
        and starter.ready()
    ):
        return fan_out(svc, starter, plan)
    if runner is None or runner.workers < 2 or len(plan.files) < 2:
        batches = plan_batches(plan, max_bytes=max(1, plan.total_bytes), max_files=max(1, len(plan.files)))
        partials = [run_partial(svc, plan, b, progress=progress) for b in batches]
    else:
        per_batch = -(-plan.total_bytes // (runner.workers * BATCHES_PER_WORKER))
        batches = plan_batches(plan, max_bytes=max(1, min(per_batch, MAX_BATCH_BYTES)))
        partials = []
        for partial in runner(plan, batches):
            partials.append(partial)
            if progress:
                progress(partial.rows)
    return merge_window(svc, plan, batches, partials)


def fan_out(svc: Services, starter: FanOutStarter, plan: WindowPlan) -> dict[str, Any]:
    """Start the window's fan-out; return ``{"status": "started" | "unchanged", "execution", "batches"}``."""
    batches = plan_batches(plan, max_bytes=max(1, starter.min_bytes))
    name = execution_name(plan)
    doc = orchestration_input(plan, batches) if starter.batches_inline else execution_input(svc, plan, batches)
    started = starter.start(name, doc)
    log.info(
        "drift window %s (%d bytes, %d files) %s as %s in %d batches",
        plan.report_id,
        plan.total_bytes,
        len(plan.files),
        "fanned out" if started else "was already fanned out",
        name,
        len(batches),
    )
    return {
        "status": "started" if started else "unchanged",
        "report_id": plan.report_id,
        "execution": name,
        "batches": len(batches),
        "bytes": plan.total_bytes,
    }


def targets(svc: Services, cmd: Any) -> list[tuple[ModelVersion, str]]:
    """Return the (live version, environment) pairs a batch checks.

    With ``cmd.model`` that model (in ``cmd.environment`` or its monitored
    environments); otherwise every model whose policy has a ``drift`` block.
    Environments without a live version are skipped.
    """
    from modelpilot.exceptions import UnknownModel

    policy = svc.policy
    if cmd.model is not None and cmd.model not in svc.registry.list_models():
        raise UnknownModel(f"unknown model {cmd.model!r}", model=cmd.model)
    if cmd.environment is not None:
        policy.check_environment(cmd.environment)
    models = [cmd.model] if cmd.model else svc.registry.list_models()
    out = []
    for model in models:
        block = policy.model_policy(model).drift
        if cmd.model is None and block is None:
            continue
        envs = (
            [cmd.environment]
            if cmd.environment
            else (block.environments if block and block.environments else policy.environments)
        )
        for env in envs:
            alias = svc.registry.get_alias(model, env)
            if alias is not None:
                out.append((svc.registry.get_version(model, alias.version), env))
    return out


def run_batch(svc: Services, cmd: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """Run every target of ``cmd``; return per-target results and the events to publish.

    A fleet run (no ``cmd.model``) records a target's permanent failure and goes on; a run
    for one model raises it. A transient failure (throttling, an outage) is raised in both, once the
    fleet's other targets have run: a stored "partial" result would keep the platform's retry from
    checking that window again (the targets already reported answer "unchanged" on the retry).
    """
    from modelpilot.exceptions import ModelPilotError

    results: list[dict[str, Any]] = []
    events: list[Any] = []
    transient: ModelPilotError | None = None
    for version, env in targets(svc, cmd):
        base = {"model": version.model, "environment": env, "version": version.version}
        try:
            done = run_one(
                svc,
                version,
                env,
                end=cmd.end or svc.clock(),
                window_seconds=cmd.window_seconds,
                data_uri=cmd.data_uri,
                progress=svc.drift_progress,
            )
        except ModelPilotError as exc:
            if cmd.model is not None:
                raise
            log.warning("drift batch for %s/%s failed: %s", version.model, env, exc.message)
            results.append({**base, "status": "failed", "error": exc.to_dict()})
            if exc.retryable:
                transient = transient or exc
            continue
        if "execution" in done:  # fanned out: the state machine's merge reports and publishes
            results.append({**base, **done})
            continue
        report = done["report"]
        results.append(
            {
                **base,
                "status": done["status"],
                "report_id": report.report_id,
                "severity": report.severity,
                "drifted_features": report.drifted_features,
                "report_uri": done["json_uri"],
                "html_uri": done["html_uri"],
            }
        )
        events.extend(done["events"])
    if transient is not None:
        raise transient
    return results, events
