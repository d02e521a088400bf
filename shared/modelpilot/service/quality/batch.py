"""The quality batch on the service's ports: windows → join → report, gauges, status and event.

Windows are aligned to multiples of the policy's window length (UTC), so a label file's hour names exactly one
window. A run covers the last complete window and, for late labels, the earlier ones within the lookback; a
window whose inputs (captures, feedback, policy, live version) did not change since its last report answers
``unchanged`` without reading anything.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot import telemetry
from modelpilot.domain.events import QualityDegraded
from modelpilot.domain.model import MonitorStatus
from modelpilot.drift.engine import compare_profiles
from modelpilot.drift.frames import Chunk, to_float
from modelpilot.drift.html import render_quality_html
from modelpilot.drift.io.feedback import read_feedback, read_predictions
from modelpilot.drift.io.stats import ReadStats
from modelpilot.exceptions import ArtifactMissing, InvalidInput, ModelPilotError, UnknownModel
from modelpilot.quality.attribution import ndcg, rank_changes
from modelpilot.quality.report import REPORT_SCHEMA, REPORT_VERSION, QualityReport, quality_report_id
from modelpilot.quality.verdict import judge_attribution, judge_version, max_severity
from modelpilot.service.drift.store import checked, drift_policy
from modelpilot.service.quality.accumulate import WindowAccumulator
from modelpilot.service.quality.store import (
    attribution_policy,
    hour_prefixes,
    load_quality_reference,
    quality_policy,
    report_uris,
    window_summary_uri,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from modelpilot.domain.commands import RunQualityBatch
    from modelpilot.domain.model import ModelVersion
    from modelpilot.policy.quality import AttributionPolicy, QualityPolicy
    from modelpilot.service.messagebus import Services
    from modelpilot.service.quality.store import QualityReference

__all__ = ["aligned_windows", "run_batch", "run_window", "targets", "window_containing"]

log = telemetry.get_logger("modelpilot.quality")


def window_containing(at: datetime, window_seconds: int) -> tuple[datetime, datetime]:
    """Return the aligned window ``[start, end)`` that contains ``at``."""
    ts = int(at.astimezone(UTC).timestamp())
    start = ts - ts % window_seconds
    return datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(start + window_seconds, UTC)


def aligned_windows(end: datetime, window_seconds: int, count: int) -> list[tuple[datetime, datetime]]:
    """Return ``count`` aligned windows ending at or before ``end``, oldest first."""
    ts = int(end.astimezone(UTC).timestamp())
    last_end = ts - ts % window_seconds
    return [
        (
            datetime.fromtimestamp(last_end - (k + 1) * window_seconds, UTC),
            datetime.fromtimestamp(last_end - k * window_seconds, UTC),
        )
        for k in reversed(range(max(count, 1)))
    ]


def targets(svc: Services, cmd: RunQualityBatch) -> list[tuple[ModelVersion, str]]:
    """Return the (live version, environment) pairs a batch checks (models with a ``quality`` block)."""
    policy = svc.policy
    if cmd.model is not None and cmd.model not in svc.registry.list_models():
        raise UnknownModel(f"unknown model {cmd.model!r}", model=cmd.model)
    if cmd.environment is not None:
        policy.check_environment(cmd.environment)
    models = [cmd.model] if cmd.model else svc.registry.list_models()
    out = []
    for model in models:
        block = policy.model_policy(model).quality
        if block is None:
            if cmd.model is not None:
                raise InvalidInput(f"the policy has no quality block for {model}", model=model)
            continue
        envs = [cmd.environment] if cmd.environment else (block.environments or policy.environments)
        for env in envs:
            alias = svc.registry.get_alias(model, env)
            if alias is not None:
                out.append((svc.registry.get_version(model, alias.version), env))
    return out


def _inventory(svc: Services, sources: list[str]) -> list[str]:
    lines = []
    for prefix in sources:
        try:
            found = svc.artifacts.list(prefix)
        except ArtifactMissing:
            continue
        for obj in found:
            stamp = obj.last_modified.isoformat() if obj.last_modified else ""
            lines.append(f"{obj.uri}|{obj.size}|{obj.etag or ''}|{stamp}")
    return lines


def _chunks(read: Callable[[str], Iterator[Chunk]], sources: list[str]) -> Iterator[Chunk]:
    for prefix in sources:
        try:
            yield from read(prefix)
        except ArtifactMissing:
            continue


def run_window(
    svc: Services,
    version: ModelVersion,
    environment: str,
    start: datetime,
    end: datetime,
    *,
    data_uri: str | None = None,
    feedback_uri: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Join, measure and judge one window of one model/environment; write the report. Idempotent."""
    model = version.model
    policy = quality_policy(svc, model)
    attribution = attribution_policy(svc, model)
    captures = [data_uri] if data_uri else hour_prefixes(svc, "captures", model, environment, start, end)
    feedback = [feedback_uri] if feedback_uri else hour_prefixes(svc, "feedback", model, environment, start, end)
    labels_due = svc.clock() - end >= timedelta(seconds=policy.label_delay_seconds)
    settings = json.dumps(
        [policy.model_dump(), attribution.model_dump() if attribution else None, version.version, labels_due],
        sort_keys=True,
    )
    inventory = [*_inventory(svc, captures), "--", *_inventory(svc, feedback), "--", settings]
    fingerprint = hashlib.sha256("\n".join(inventory).encode()).hexdigest()
    rid = quality_report_id(model, environment, end.isoformat(), fingerprint)
    json_uri, html_uri = report_uris(svc, model, environment, rid)
    try:
        existing = QualityReport.from_json(svc.artifacts.read_bytes(json_uri, max_bytes=64 * 1024 * 1024))
        return {"status": "unchanged", "report": existing, "json_uri": json_uri, "html_uri": html_uri}
    except ArtifactMissing:
        pass
    reference = load_quality_reference(svc, version, policy)
    cols = policy.columns
    features = [f.name for f in version.manifest.features]
    capture_stats, feedback_stats = ReadStats(), ReadStats()
    acc = WindowAccumulator(policy, reference, version.version)
    sampler = _Sampler(attribution, features, seed=int(end.timestamp())) if attribution and attribution.hook else None
    try:
        read_p: Callable[[str], Iterator[Chunk]] = lambda uri: read_predictions(  # noqa: E731
            svc.artifacts, uri, capture_stats, features=features, id_column=cols.id, output=cols.output
        )
        for chunk in checked(
            _chunks(read_p, captures), capture_stats, policy.max_corrupt_share, f"captures of {model}/{environment}"
        ):
            acc.add_predictions(chunk)
            if sampler is not None:
                sampler.add(chunk)
            if progress:
                progress(chunk.rows)
        read_f: Callable[[str], Iterator[Chunk]] = lambda uri: read_feedback(  # noqa: E731
            svc.artifacts, uri, feedback_stats, id_column=cols.id, label_column=cols.label
        )
        for chunk in checked(
            _chunks(read_f, feedback), feedback_stats, policy.max_corrupt_share, f"feedback of {model}/{environment}"
        ):
            acc.add_labels(chunk)
        acc.finish()
        doc = _report(
            svc,
            version,
            environment,
            start,
            end,
            rid,
            policy,
            attribution,
            reference,
            acc,
            sampler,
            {"captures": capture_stats, "feedback": feedback_stats},
            {"captures": data_uri or captures[0] if captures else None, "feedback": feedback_uri or None},
        )
    finally:
        acc.close()
    report = QualityReport(doc)
    svc.artifacts.write_bytes(json_uri, report.to_json(), content_type="application/json", write_once=True)
    svc.artifacts.write_bytes(html_uri, render_quality_html(doc).encode(), content_type="text/html", write_once=True)
    summary = {
        "report_id": rid,
        "report_uri": json_uri,
        "window": doc["window"],
        "generated_at": doc["generated_at"],
        "severity": doc["severity"],
        "versions": [
            {
                k: g.get(k)
                for k in ("version", "predictions", "labelled", "correct", "coverage", "enough_labels", "metrics")
            }
            for g in doc["versions"]
        ],
    }
    svc.artifacts.write_bytes(
        window_summary_uri(svc, model, environment, end),
        json.dumps(summary, sort_keys=True, default=str).encode(),
        content_type="application/json",
    )
    _gauges(doc)
    return {
        "status": "degraded" if doc["severity"] != "none" else "ok",
        "report": report,
        "json_uri": json_uri,
        "html_uri": html_uri,
    }


def _report(
    svc: Services,
    version: ModelVersion,
    environment: str,
    start: datetime,
    end: datetime,
    rid: str,
    policy: QualityPolicy,
    attribution: AttributionPolicy | None,
    reference: QualityReference,
    acc: WindowAccumulator,
    sampler: _Sampler | None,
    stats: dict[str, ReadStats],
    uris: dict[str, str | None],
) -> dict[str, Any]:
    now = svc.clock()
    groups = [acc.version_numbers(g) for _, g in sorted(acc.groups.items())]
    if not groups:
        groups = [acc.version_numbers(acc.group(version.version))]
    due = now - end >= timedelta(seconds=policy.label_delay_seconds)
    breaches: list[dict[str, Any]] = []
    for group in groups:
        found = judge_version(group, policy, reference.metrics, coverage_due=due)
        if group["version"] != version.version:
            for item in found:
                item["severity"] = "none"
        breaches.extend(found)
    prediction_drift = _prediction_drift(svc, version, environment, reference, acc, policy)
    if prediction_drift and prediction_drift["severity"] != "none":
        breaches.append(
            {
                "check": "prediction_drift",
                "severity": prediction_drift["severity"],
                "message": "prediction drift on " + (", ".join(prediction_drift["drifted"]) or "data quality"),
            }
        )
    attribution_section = _attribution(version, reference, acc, attribution, sampler)
    breaches.extend(judge_attribution(attribution_section, attribution))
    order = {"critical": 0, "warning": 1, "none": 2}
    breaches.sort(key=lambda b: (order.get(b["severity"], 3), b["check"]))
    severity = max_severity("none", *(b["severity"] for b in breaches))
    join = acc.join.stats.to_dict()
    join.update(
        predictions=acc.rows,
        missing_ids=acc.missing_ids,
        labels_read=acc.labels_read,
        labels_missing_id=acc.labels_missing_id,
        labels_missing_value=acc.labels_missing_value,
        coverage=join["matched"] / acc.rows if acc.rows else None,
    )
    return {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "report_id": rid,
        "model": version.model,
        "environment": environment,
        "version": version.version,
        "task": policy.task,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "generated_at": now.isoformat(),
        "severity": severity,
        "breaches": breaches,
        "join": join,
        "versions": groups,
        "reference": {
            "source": reference.source,
            "rows": reference.rows,
            "labelled": reference.labelled,
            "metrics": reference.metrics,
            "calibrated": reference.calibration is not None,
            "notes": reference.notes,
        },
        "prediction_drift": prediction_drift,
        "attribution": attribution_section,
        "inputs": {
            kind: {
                "uri": uris.get(kind),
                "files": s.files,
                "rows": s.rows,
                "corrupt_rows": s.corrupt_rows,
                "corrupt_files": s.corrupt_files,
                "corrupt_examples": s.examples,
            }
            for kind, s in stats.items()
        },
        "settings": {
            "min_labelled_rows": policy.min_labelled_rows,
            "min_coverage": policy.min_coverage,
            "thresholds": [str(r) for r in policy.thresholds],
            "band_z": policy.band_z,
            "slices": policy.slices,
        },
    }


def _prediction_drift(
    svc: Services,
    version: ModelVersion,
    environment: str,
    reference: QualityReference,
    acc: WindowAccumulator,
    policy: QualityPolicy,
) -> dict[str, Any] | None:
    if not policy.prediction_drift or reference.prediction_profile is None or acc.prediction_profile is None:
        return None
    current = acc.prediction_profile.profile()
    if current.rows == 0:
        return None
    report = compare_profiles(
        reference.prediction_profile,
        current,
        drift_policy(svc, version.model),
        context={"model": version.model, "environment": environment, "version": version.version},
    )
    return {
        "severity": report.data["drift_severity"],
        "drifted": report.drifted_features,
        "features": [
            {
                k: item.get(k)
                for k in (
                    "name",
                    "kind",
                    "method",
                    "effect",
                    "threshold",
                    "pvalue",
                    "pvalue_corrected",
                    "drifted",
                    "n_reference",
                    "n_current",
                    "histogram",
                )
            }
            for item in report.features
        ],
    }


def _attribution(
    version: ModelVersion,
    reference: QualityReference,
    acc: WindowAccumulator,
    policy: AttributionPolicy | None,
    sampler: _Sampler | None,
) -> dict[str, Any] | None:
    if policy is None:
        return None
    notes: list[str] = []
    if sampler is not None and not acc.attribution.counts:
        try:
            for name, values in sampler.explain(version).items():
                acc.attribution.add(name, values)
        except ModelPilotError as exc:
            notes.append(f"attribution hook failed: {exc.message}")
    current = acc.attribution.importances()
    if not reference.attribution:
        notes.append("the reference has no attributions")
    if not current:
        notes.append("the window has no attributions (capture columns or a hook)")
    value = ndcg(reference.attribution, current, policy.top_k) if reference.attribution and current else None
    return {
        "ndcg": value,
        "threshold": policy.threshold,
        "top_k": policy.top_k,
        "rows": acc.attribution.rows,
        "reference": reference.attribution,
        "current": current,
        "changes": rank_changes(reference.attribution, current) if reference.attribution and current else [],
        "notes": notes,
    }


class _Sampler:
    """A uniform sample of the window's feature rows (the smallest random keys win), for the attribution hook."""

    def __init__(self, policy: AttributionPolicy, features: list[str], seed: int) -> None:
        self.policy, self.features = policy, features
        self.rng = np.random.default_rng(seed)
        self.keys = np.zeros(0)
        self.rows: dict[str, np.ndarray] = {}

    def add(self, chunk: Chunk) -> None:
        keys = np.concatenate([self.keys, self.rng.random(chunk.rows)])
        columns = {
            f: np.concatenate(
                [
                    self.rows.get(f, np.zeros(0)),
                    to_float(chunk.columns[f])[0] if f in chunk.columns else np.full(chunk.rows, np.nan),
                ]
            )
            for f in self.features
        }
        keep = np.argsort(keys, kind="stable")[: self.policy.sample_rows]
        self.keys = keys[keep]
        self.rows = {f: v[keep] for f, v in columns.items()}

    def explain(self, version: ModelVersion) -> dict[str, np.ndarray]:
        module_name, _, function = (self.policy.hook or "").partition(":")
        try:
            hook = getattr(importlib.import_module(module_name), function)
        except (ImportError, AttributeError) as exc:
            raise InvalidInput(f"attribution hook {self.policy.hook} cannot be loaded: {exc}") from None
        result = hook(dict(self.rows), model=version.model, version=version.version)
        if not isinstance(result, dict):
            raise InvalidInput(f"attribution hook {self.policy.hook} must return feature -> values")
        return {str(k): np.asarray(v, dtype=np.float64) for k, v in result.items()}


def _gauges(doc: dict[str, Any]) -> None:
    base = {"model": doc["model"], "environment": doc["environment"]}
    for group in doc["versions"]:
        attrs = {**base, "version": group["version"]}
        telemetry.gauge_set("modelpilot.quality.labelled_rows", float(group["labelled"]), attrs)
        if group.get("coverage") is not None:
            telemetry.gauge_set("modelpilot.quality.coverage", float(group["coverage"]), attrs)
        for metric, value in (group.get("metrics") or {}).items():
            if isinstance(value, int | float) and group.get("enough_labels"):
                telemetry.gauge_set("modelpilot.quality.metric", float(value), {**attrs, "metric": metric})
        for metric, band in (group.get("estimated") or {}).items():
            if band:
                telemetry.gauge_set("modelpilot.quality.estimated", float(band["value"]), {**attrs, "metric": metric})
    attribution = doc.get("attribution") or {}
    if attribution.get("ndcg") is not None:
        telemetry.gauge_set("modelpilot.quality.attribution_ndcg", float(attribution["ndcg"]), base)


def _windows(cmd: RunQualityBatch, policy: QualityPolicy, now: datetime) -> list[tuple[datetime, datetime]]:
    width = policy.window_seconds
    if cmd.window_of is not None:
        return [window_containing(cmd.window_of, width)]
    if cmd.data_uri or cmd.feedback_uri:
        count = 1
    else:
        count = cmd.windows if cmd.windows is not None else max(1, policy.lookback_seconds // width)
    return aligned_windows(cmd.end or now, width, count)


def run_batch(svc: Services, cmd: RunQualityBatch) -> tuple[list[dict[str, Any]], list[Any]]:
    """Run every window of every target; store one monitor status per target; return results and events.

    A fleet run (no ``cmd.model``) records a target's failure and goes on; a run for one model raises it.
    """
    results: list[dict[str, Any]] = []
    events: list[Any] = []
    now = svc.clock()
    for version, env in targets(svc, cmd):
        base = {"model": version.model, "environment": env, "version": version.version}
        try:
            policy = quality_policy(svc, version.model)
            history = svc.registry.alias_history(version.model, env)
            done = []
            for start, end in _windows(cmd, policy, now):
                served = _live_during(svc, history, version, end)
                item = run_window(svc, served, env, start, end, data_uri=cmd.data_uri, feedback_uri=cmd.feedback_uri)
                done.append({**item, "served_by": served.version})
        except ModelPilotError as exc:
            if cmd.model is not None:
                raise
            log.warning("quality batch for %s/%s failed: %s", version.model, env, exc.message)
            results.append({**base, "status": "failed", "error": exc.to_dict()})
            continue
        for item in done:
            report = item["report"]
            live = report.version(item["served_by"]) or {}
            results.append(
                {
                    **base,
                    "version": item["served_by"],
                    "status": item["status"]
                    if item["status"] == "unchanged"
                    else ("degraded" if report.severity != "none" else "ok"),
                    "report_id": report.report_id,
                    "window_end": report.data["window"]["end"],
                    "severity": report.severity,
                    "predictions": live.get("predictions", 0),
                    "labelled": live.get("labelled", 0),
                    "coverage": live.get("coverage"),
                    "metrics": live.get("metrics", {}),
                    "breaches": [b["message"] for b in report.breaches if b["severity"] != "none"],
                    "report_uri": item["json_uri"],
                    "html_uri": item["html_uri"],
                }
            )
        own = [d for d in done if d["served_by"] == version.version]
        if not own:
            continue  # every window was served by an earlier version: nothing to say about the live one
        worst = max(own, key=lambda d: ("none", "warning", "critical").index(d["report"].severity))
        event = _store_status(svc, version, env, worst)
        if event is not None and any(d["status"] != "unchanged" for d in own):
            events.append(event)
    return results, events


def _live_during(svc: Services, history: list[Any], current: ModelVersion, end: datetime) -> ModelVersion:
    """The version the alias pointed at when the window ended (the current one when history does not say)."""
    served = None
    for change in history:
        if change.at < end:
            served = change.to_version
    if served is None or served == current.version:
        return current
    return svc.registry.get_version(current.model, served)


def _store_status(svc: Services, version: ModelVersion, env: str, worst: dict[str, Any]) -> QualityDegraded | None:
    report: QualityReport = worst["report"]
    alert = report.severity != "none"
    breaches = [b["message"] for b in report.breaches if b["severity"] != "none"]
    svc.registry.put_monitor_status(
        MonitorStatus(
            model=version.model,
            environment=env,
            kind="quality",
            state="alert" if alert else "ok",
            version=version.version,
            updated_at=svc.clock(),
            summary=f"{report.severity}: {'; '.join(breaches[:3])}" if alert else "quality within policy",
            details={
                "report_id": report.report_id,
                "report_uri": worst["json_uri"],
                "html_uri": worst["html_uri"],
                "severity": report.severity,
                "window_end": report.data["window"]["end"],
            },
        )
    )
    if not alert:
        return None
    return QualityDegraded(
        version.model,
        env,
        version.version,
        report.severity,
        breaches,
        report.report_id,
        worst["json_uri"],
        report.data["window"]["end"],
    )
