"""The drift batch on the service's ports: window → report, metrics, status, event.

Called by :mod:`modelpilot.service.drift.handlers` (which stays free of numpy
at import). Where profiles, captures and reports live: :mod:`modelpilot.service.drift.store`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.domain.events import DriftDetected
from modelpilot.domain.model import MonitorStatus
from modelpilot.drift.builder import ProfileAccumulator
from modelpilot.drift.engine import compare_profiles
from modelpilot.drift.html import render_html
from modelpilot.drift.io.readers import ReadStats, read_capture
from modelpilot.drift.report import DriftReport, report_id
from modelpilot.exceptions import ArtifactMissing
from modelpilot.service.drift.store import (
    build_profile_for_version,
    checked,
    drift_policy,
    load_reference,
    profile_uri,
    report_uris,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from modelpilot.domain.model import ModelVersion
    from modelpilot.drift.frames import Chunk
    from modelpilot.service.messagebus import Services

__all__ = [
    "build_profile_for_version",
    "hour_prefixes",
    "load_reference",
    "profile_uri",
    "report_uris",
    "run_batch",
    "run_one",
    "targets",
]

log = telemetry.get_logger("modelpilot.drift")
_METRICS = (
    "psi",
    "jensen_shannon",
    "hellinger",
    "wasserstein_norm",
    "ks",
    "linf",
    "chi2_pvalue",
    "ks_pvalue",
)


def hour_prefixes(svc: Services, model: str, environment: str, start: datetime, end: datetime) -> list[str]:
    """Return the hourly capture prefixes covering ``[start, end)``."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(
            svc.artifacts.join(
                svc.data_root,
                "captures",
                model,
                environment,
                hour.strftime("%Y"),
                hour.strftime("%m"),
                hour.strftime("%d"),
                hour.strftime("%H"),
            )
        )
        hour += timedelta(hours=1)
    return out


def _window_chunks(svc: Services, sources: list[str], names: list[str], stats: ReadStats) -> Iterator[Chunk]:
    for prefix in sources:
        try:
            yield from read_capture(svc.artifacts, prefix, names, stats)
        except ArtifactMissing:
            continue


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
    """Check one model/environment's window; write the report, metrics, status and event. Idempotent."""
    model = version.model
    end = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0) if data_uri is None else end.astimezone(UTC)
    start = end - timedelta(seconds=window_seconds)
    rid = report_id(model, environment, start.isoformat(), end.isoformat(), data_uri or "")
    json_uri, html_uri = report_uris(svc, model, environment, rid)
    try:
        existing = DriftReport.from_json(svc.artifacts.read_bytes(json_uri, max_bytes=64 * 1024 * 1024))
        return {
            "status": "unchanged",
            "report": existing,
            "json_uri": json_uri,
            "html_uri": html_uri,
            "events": [],
        }
    except ArtifactMissing:
        pass
    policy = drift_policy(svc, model)
    ref_uri, reference = load_reference(svc, version)
    names = list(reference.features)
    sources = [data_uri] if data_uri else hour_prefixes(svc, model, environment, start, end)
    stats = ReadStats()
    acc = ProfileAccumulator(reference)
    for chunk in checked(
        _window_chunks(svc, sources, names, stats),
        stats,
        policy.max_corrupt_share,
        f"capture window of {model}/{environment}",
    ):
        acc.add(chunk)
        if progress:
            progress(chunk.rows)
    context = {
        "report_id": rid,
        "model": model,
        "environment": environment,
        "version": version.version,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "reference_uri": ref_uri,
        "data_uri": data_uri or svc.artifacts.join(svc.data_root, "captures", model, environment),
        "files": stats.files,
        "corrupt_files": stats.corrupt_files,
        "corrupt_examples": stats.examples,
    }
    report = compare_profiles(reference, acc.profile(), policy, context=context)
    svc.artifacts.write_bytes(json_uri, report.to_json(), content_type="application/json", write_once=True)
    svc.artifacts.write_bytes(html_uri, render_html(report).encode(), content_type="text/html", write_once=True)
    _emit_metrics(report)
    _store_status(svc, report, version.version, json_uri, html_uri)
    events = []
    if report.severity != "none":
        events.append(
            DriftDetected(model, environment, version.version, report.severity, report.drifted_features, rid, json_uri)
        )
    return {
        "status": "drift" if events else "ok",
        "report": report,
        "json_uri": json_uri,
        "html_uri": html_uri,
        "events": events,
    }


def _emit_metrics(report: DriftReport) -> None:
    base = {"model": report.data["model"], "environment": report.data["environment"]}
    for item in report.features:
        for method in _METRICS:
            value = item["metrics"].get(method)
            if isinstance(value, int | float):
                telemetry.gauge_set(
                    "modelpilot.drift.score",
                    float(value),
                    {**base, "feature": item["name"], "method": method},
                )
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

    A fleet run (no ``cmd.model``) records a target's failure and goes on; a run
    for one model raises it.
    """
    from modelpilot.exceptions import ModelPilotError

    results: list[dict[str, Any]] = []
    events: list[Any] = []
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
    return results, events
