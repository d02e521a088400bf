"""Drift at scale, on the service's ports: plan a window, read a batch, store a partial, merge and report.

The three steps every runner shares (the single pass, the local process pool,
Step Functions' Distributed Map and Durable Functions' fan-out/fan-in):

* :func:`plan_window` lists the window's data files (and builds the reference
  profile when it is missing);
* :func:`run_partial` reads one :class:`~modelpilot.service.drift.fanout.Batch`
  into a partial profile; :func:`store_partial` returns it inline when small
  and otherwise writes it once, under its batch key, to the artifact store;
* :func:`merge_window` merges the partials exactly and writes the report,
  metrics, monitor status and the ``DriftDetected`` event, as a single pass does.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.domain.events import DriftDetected
from modelpilot.domain.model import MonitorStatus
from modelpilot.drift.builder import ProfileAccumulator
from modelpilot.drift.engine import compare_profiles
from modelpilot.drift.html import render_html
from modelpilot.drift.io.readers import ReadStats, data_files, read_files
from modelpilot.drift.profile import Profile
from modelpilot.drift.report import DriftReport, report_id
from modelpilot.exceptions import ArtifactMissing, DataError
from modelpilot.service.drift.fanout import Batch, PartialProfile, WindowPlan, merge_partials
from modelpilot.service.drift.store import checked, drift_policy, load_reference, report_uris

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from modelpilot.domain.events import Event
    from modelpilot.domain.model import ModelVersion
    from modelpilot.service.messagebus import Services

__all__ = [
    "INLINE_LIMIT",
    "execution_input",
    "execution_name",
    "existing_result",
    "hour_prefixes",
    "load_partial",
    "merge_window",
    "orchestration_input",
    "partial_uri",
    "plan_window",
    "run_partial",
    "store_partial",
    "window_id",
    "window_prefix",
]

#: a partial larger than this (the Step Functions state payload limit) is written to the artifact store
INLINE_LIMIT = 256 * 1024
_METRICS = ("psi", "jensen_shannon", "hellinger", "wasserstein_norm", "ks", "linf", "chi2_pvalue", "ks_pvalue")


def hour_prefixes(svc: Services, model: str, environment: str, start: datetime, end: datetime) -> list[str]:
    """Return the hourly capture prefixes covering ``[start, end)``."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(
            svc.artifacts.join(svc.data_root, "captures", model, environment, *hour.strftime("%Y %m %d %H").split())
        )
        hour += timedelta(hours=1)
    return out


def _window(end: datetime, window_seconds: int, data_uri: str | None) -> tuple[datetime, datetime]:
    end = end.astimezone(UTC)
    if data_uri is None:
        end = end.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(seconds=window_seconds), end


def existing_result(svc: Services, plan_or_id: WindowPlan | tuple[str, str, str]) -> dict[str, Any] | None:
    """Return the stored result of a window already checked (at-least-once timers), else None.

    The report's JSON is written last (after its HTML, the monitor status and the event), so a
    stored JSON means the window was completed; its event was published by the run that completed it.
    """
    model, env, rid = (
        (plan_or_id.model, plan_or_id.environment, plan_or_id.report_id)
        if isinstance(plan_or_id, WindowPlan)
        else plan_or_id
    )
    json_uri, html_uri = report_uris(svc, model, env, rid)
    try:
        report = DriftReport.from_json(svc.artifacts.read_bytes(json_uri, max_bytes=64 * 1024 * 1024))
    except ArtifactMissing:
        return None
    return {"status": "unchanged", "report": report, "json_uri": json_uri, "html_uri": html_uri, "events": []}


def window_id(
    version: ModelVersion, environment: str, *, end: datetime, window_seconds: int, data_uri: str | None
) -> str:
    """Return the report id of a window (no I/O)."""
    start, end = _window(end, window_seconds, data_uri)
    return report_id(version.model, environment, start.isoformat(), end.isoformat(), data_uri or "")


def plan_window(
    svc: Services,
    version: ModelVersion,
    environment: str,
    *,
    end: datetime,
    window_seconds: int,
    data_uri: str | None,
) -> WindowPlan:
    """List the window's data files in single-pass order; build the reference profile when it is missing."""
    start, end = _window(end, window_seconds, data_uri)
    rid = report_id(version.model, environment, start.isoformat(), end.isoformat(), data_uri or "")
    ref_uri, _ = load_reference(svc, version)
    sources = [data_uri] if data_uri else hour_prefixes(svc, version.model, environment, start, end)
    files: list[tuple[str, int]] = []
    for prefix in sources:
        try:
            objects = svc.artifacts.list(prefix)
        except ArtifactMissing:
            continue
        files.extend((o.uri, o.size) for o in data_files(objects))
    return WindowPlan(
        version.model,
        environment,
        version.version,
        rid,
        start.isoformat(),
        end.isoformat(),
        data_uri,
        ref_uri,
        tuple(files),
    )


def _reference(svc: Services, plan: WindowPlan) -> Profile:
    return Profile.from_json(svc.artifacts.read_bytes(plan.reference_uri, max_bytes=256 * 1024 * 1024))


def run_partial(
    svc: Services,
    plan: WindowPlan,
    batch: Batch,
    *,
    reference: Profile | None = None,
    progress: Callable[[int], None] | None = None,
) -> PartialProfile:
    """Read one batch's files into a partial profile (bounded memory: chunks are binned and dropped)."""
    reference = reference or _reference(svc, plan)
    stats = ReadStats()
    acc = ProfileAccumulator(reference)
    for chunk in read_files(svc.artifacts, batch.files, list(reference.features), stats):
        acc.add(chunk)
        if progress:
            progress(chunk.rows)
    return PartialProfile.of(plan.report_id, batch.index, acc.profile(), stats)


def partial_uri(svc: Services, plan: WindowPlan, batch: Batch) -> str:
    """Return where a batch's partial profile is written (one object per batch key)."""
    return svc.artifacts.join(
        svc.data_root, "partials", plan.model, plan.environment, plan.report_id, f"{batch.key}.json"
    )


def store_partial(
    svc: Services, plan: WindowPlan, batch: Batch, partial: PartialProfile, *, inline_limit: int = INLINE_LIMIT
) -> dict[str, Any]:
    """Return a reference to the partial: inline when at most ``inline_limit`` bytes, else written once by key.

    A retried batch produces the same bytes, so its second write is accepted as
    the same object; a different partial under the same key raises ``AlreadyExists``.
    """
    data = partial.to_json()
    ref: dict[str, Any] = {"batch": batch.index, "key": batch.key, "bytes": len(data)}
    if len(data) <= inline_limit:
        ref["partial"] = json.loads(data)
        return ref
    ref["uri"] = svc.artifacts.write_bytes(
        partial_uri(svc, plan, batch), data, content_type="application/json", write_once=True
    )
    return ref


def window_prefix(svc: Services, plan: WindowPlan) -> str:
    """Return the window's own prefix (batch list, large partials, the fan-out's results)."""
    return svc.artifacts.join(svc.data_root, "partials", plan.model, plan.environment, plan.report_id)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def execution_name(plan: WindowPlan) -> str:
    """Return the fan-out execution's name for a window: deterministic, so a retried tick names the same one
    (at most 80 characters of ``[A-Za-z0-9_-]``, as Step Functions allows)."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", f"drift-{plan.model}-{plan.environment}")[:50]
    return f"{readable}-{hashlib.sha256(plan.report_id.encode()).hexdigest()[:24]}"


def execution_input(
    svc: Services,
    plan: WindowPlan,
    batches: Sequence[Batch],
    *,
    max_concurrency: int = 100,
    tolerated_failure_percentage: float = 0.0,
    batches_per_child: int = 1,
) -> dict[str, Any]:
    """Write the batch list once and return the state machine's input (the plan travels without its file list).

    A retried tick plans the same batches and writes the same bytes, which the store accepts.
    """
    prefix = window_prefix(svc, plan)
    listing = svc.artifacts.join(prefix, "batches.json")
    body = json.dumps([b.to_dict() for b in batches], sort_keys=True).encode()
    svc.artifacts.write_bytes(listing, body, content_type="application/json", write_once=True)
    bucket, key = _split(listing)
    slim = replace(plan, files=())
    return {
        "plan": slim.to_dict(),
        "batches": {"Bucket": bucket, "Key": key},
        "results": {"Bucket": bucket, "Prefix": _split(svc.artifacts.join(prefix, "results"))[1]},
        "max_concurrency": max_concurrency,
        "tolerated_failure_percentage": tolerated_failure_percentage,
        "batches_per_child": batches_per_child,
    }


def orchestration_input(
    plan: WindowPlan, batches: Sequence[Batch], *, max_concurrency: int = 50, retry_attempts: int = 3
) -> dict[str, Any]:
    """Return the Durable orchestration's input: the plan without its file list, the batches with theirs."""
    return {
        "plan": replace(plan, files=()).to_dict(),
        "batches": [b.to_dict() for b in batches],
        "max_concurrency": max_concurrency,
        "retry_attempts": retry_attempts,
    }


def load_partial(svc: Services, plan: WindowPlan, ref: dict[str, Any]) -> PartialProfile:
    """Return the partial a :func:`store_partial` reference points to (only under this window's prefix)."""
    if "partial" in ref:
        return PartialProfile.from_json(json.dumps(ref["partial"]))
    uri = str(ref.get("uri", ""))
    base = svc.artifacts.join(svc.data_root, "partials", plan.model, plan.environment, plan.report_id) + "/"
    if not uri.startswith(base):
        raise DataError(f"partial profile reference {uri!r} is not under this window's {base}")
    return PartialProfile.from_json(svc.artifacts.read_bytes(uri, max_bytes=256 * 1024 * 1024))


def merge_window(
    svc: Services, plan: WindowPlan, batches: Sequence[Batch], partials: Iterable[PartialProfile]
) -> dict[str, Any]:
    """Merge a window's partials and write the report, metrics, monitor status and event. Idempotent.

    A batch without a partial (a child that failed within the tolerated share)
    counts its files as corrupt files, so the policy's ``max_corrupt_share`` decides
    whether the window still reports.
    """
    done = existing_result(svc, plan)
    if done is not None:
        return done
    reference = _reference(svc, plan)
    merged = merge_partials(partials)
    for p in [merged] if merged else []:
        if p.report_id != plan.report_id:
            raise DataError(f"partials of window {p.report_id!r} given to the merge of {plan.report_id!r}")
    stats = merged.stats() if merged else ReadStats()
    covered = merged.batches if merged else frozenset()
    known = {b.index for b in batches}
    if covered - known:
        raise DataError(f"partials cover batch(es) {sorted(covered - known)} that the plan does not have")
    for batch in batches:
        if batch.index not in covered:
            for uri in batch.files:
                stats.files += 1
                stats.corrupt_file(uri, f"batch {batch.index} was not read")
    policy = drift_policy(svc, plan.model)
    # the single pass's check, with its message, over the merged statistics
    list(checked(iter(()), stats, policy.max_corrupt_share, f"capture window of {plan.model}/{plan.environment}"))
    current = merged.profile if merged else reference.empty_like()
    context = {
        "report_id": plan.report_id,
        "model": plan.model,
        "environment": plan.environment,
        "version": plan.version,
        "window": {"start": plan.start, "end": plan.end},
        "reference_uri": plan.reference_uri,
        "data_uri": plan.data_uri or svc.artifacts.join(svc.data_root, "captures", plan.model, plan.environment),
        "files": stats.files,
        "corrupt_files": stats.corrupt_files,
        "corrupt_examples": stats.examples,
    }
    report = compare_profiles(reference, current, policy, context=context)
    json_uri, html_uri = report_uris(svc, plan.model, plan.environment, plan.report_id)
    # all or nothing: the HTML, the monitor status and the event first, the report's JSON last. The JSON is the
    # commit marker :func:`existing_result` looks for, so a failure before it leaves the window to be checked
    # again by the retry, which rewrites the same HTML and status and publishes the event again (the same
    # report id: at least once); a failure after it leaves nothing undone.
    svc.artifacts.write_bytes(html_uri, render_html(report).encode(), content_type="text/html", write_once=True)
    _emit_metrics(report)
    _store_status(svc, report, plan.version, json_uri, html_uri)
    events: list[Event] = []
    if report.severity != "none":
        events.append(
            DriftDetected(
                plan.model,
                plan.environment,
                plan.version,
                report.severity,
                report.drifted_features,
                plan.report_id,
                json_uri,
            )
        )
        svc.publisher.publish(events, traceparent=telemetry.current_traceparent())
    svc.artifacts.write_bytes(json_uri, report.to_json(), content_type="application/json", write_once=True)
    status = "drift" if events else "ok"
    return {"status": status, "report": report, "json_uri": json_uri, "html_uri": html_uri, "events": events}


def _emit_metrics(report: DriftReport) -> None:
    base = {"model": report.data["model"], "environment": report.data["environment"]}
    for item in report.features:
        for method in _METRICS:
            value = item["metrics"].get(method)
            if isinstance(value, int | float):
                attrs = {**base, "feature": item["name"], "method": method}
                telemetry.gauge_set("modelpilot.drift.score", float(value), attrs)
        for key, value in item["quality"].items():
            if key.endswith("_rate"):
                telemetry.gauge_set(f"modelpilot.data_quality.{key}", float(value), {**base, "feature": item["name"]})
    quality = report.data["quality"]
    telemetry.gauge_set("modelpilot.data_quality.corrupt_share", float(quality["corrupt_share"]), base)
    telemetry.gauge_set("modelpilot.data_quality.missing_columns", float(len(quality["missing_columns"])), base)
    telemetry.gauge_set("modelpilot.drift.drifted_features", float(len(report.drifted_features)), base)


def _store_status(svc: Services, report: DriftReport, version: int, json_uri: str, html_uri: str) -> None:
    drifted = report.drifted_features
    summary = (
        f"{report.severity} drift on {', '.join(drifted)}"
        if drifted
        else f"{report.severity}: {'; '.join(report.data['quality']['breaches'][:3])}"
        if report.severity != "none"
        else "no drift"
    )
    svc.registry.put_monitor_status(
        MonitorStatus(
            model=report.data["model"],
            environment=report.data["environment"],
            kind="drift",
            state="alert" if report.severity != "none" else "ok",
            version=version,
            updated_at=svc.clock(),
            summary=summary,
            details={
                "report_id": report.report_id,
                "report_uri": json_uri,
                "html_uri": html_uri,
                "severity": report.severity,
                "drifted_features": drifted,
            },
        )
    )
