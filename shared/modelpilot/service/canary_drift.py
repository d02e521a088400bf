"""A canary metric of ``kind: drift``: the candidate's own captured traffic against its reference profile.

The candidate's traffic is told apart from the stable version's by where it is captured: below each
hour of the environment's capture layout, a folder per version,
``<data_root>/captures/<model>/<env>/YYYY/MM/DD/HH/v<version>/…`` (SageMaker data capture writes
one folder per production variant too, and the traffic routers name variants ``v{version}``). The drift
batch lists each hour recursively, so it still sees the whole environment's traffic; files directly
below the hour belong to no version and are not read here.

The metric reads every capture hour that overlaps the step's window ``[start, end)``, bins it into the
candidate's reference profile (built when missing, as the drift batch does) and runs the drift engine
with the model's drift policy. Fewer rows than ``min_samples``, no reference data, or a window more
corrupt than the policy's ``max_corrupt_share`` make it inconclusive; otherwise it fails when the
report's severity is above ``max_severity`` or the share of drifted features above ``threshold``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.domain.canary import MetricComparison
from modelpilot.exceptions import ModelPilotError

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.canary import Canary
    from modelpilot.policy.canary import CanaryMetric
    from modelpilot.service.messagebus import Services

__all__ = ["SEVERITY_ORDER", "candidate_files", "compare_drift"]

SEVERITY_ORDER = ("none", "warning", "critical")


def candidate_files(svc: Services, canary: Canary, start: datetime, end: datetime) -> list[str]:
    """Return the candidate's capture files of the hours overlapping ``[start, end)``, in order."""
    from modelpilot.drift.io.readers import data_files
    from modelpilot.exceptions import ArtifactMissing
    from modelpilot.service.drift.window import hour_prefixes

    files: list[str] = []
    for prefix in hour_prefixes(svc, canary.model, canary.environment, start, end):
        own = svc.artifacts.join(prefix, f"v{canary.candidate_version}") + "/"
        try:
            objects = svc.artifacts.list(prefix)
        except ArtifactMissing:
            continue
        files.extend(o.uri for o in data_files(objects) if o.uri.startswith(own))
    return files


def compare_drift(
    svc: Services, canary: Canary, metric: CanaryMetric, min_samples: int, start: datetime, end: datetime
) -> MetricComparison:
    """Profile the candidate's traffic over the window and judge it against its reference profile."""
    from modelpilot.drift.builder import ProfileAccumulator
    from modelpilot.drift.engine import compare_profiles
    from modelpilot.drift.io.readers import ReadStats, read_files
    from modelpilot.service.drift.store import checked, drift_policy, load_reference

    def inconclusive(detail: str, evidence: dict[str, Any] | None = None) -> MetricComparison:
        return MetricComparison(metric.name, None, None, metric.limit, 0, None, detail, evidence)

    version = svc.registry.get_version(canary.model, canary.candidate_version)
    policy = drift_policy(svc, canary.model)
    try:
        reference_uri, reference = load_reference(svc, version)
        files = candidate_files(svc, canary, start, end)
        stats = ReadStats()
        acc = ProfileAccumulator(reference)
        what = f"the capture of {canary.model} v{canary.candidate_version} in {canary.environment}"
        for chunk in checked(
            read_files(svc.artifacts, files, list(reference.features), stats), stats, policy.max_corrupt_share, what
        ):
            acc.add(chunk)
    except ModelPilotError as exc:
        return inconclusive(f"inconclusive: {exc.message}")
    base = {"files": len(files), "rows": stats.rows, "corrupt_rows": stats.corrupt_rows}
    if stats.rows < min_samples:
        return MetricComparison(
            metric.name,
            None,
            None,
            metric.limit,
            stats.rows,
            None,
            f"inconclusive: {stats.rows} captured rows of v{canary.candidate_version} in {len(files)} file(s); "
            f"at least {min_samples} are needed",
            base,
        )
    report = compare_profiles(
        reference,
        acc.profile(),
        policy,
        context={
            "model": canary.model,
            "environment": canary.environment,
            "version": canary.candidate_version,
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "reference_uri": reference_uri,
            "files": stats.files,
            "corrupt_files": stats.corrupt_files,
        },
    )
    drifted = report.drifted_features
    share = len(drifted) / max(1, len(report.features))
    allowed = metric.max_severity or "warning"
    too_severe = SEVERITY_ORDER.index(report.severity) > SEVERITY_ORDER.index(allowed)
    too_many = metric.threshold is not None and share > metric.threshold
    passed = not (too_severe or too_many)
    evidence = {**base, "severity": report.severity, "drifted_features": drifted, "share": share}
    names = ", ".join(drifted[:5]) + (f" and {len(drifted) - 5} more" if len(drifted) > 5 else "")
    detail = (
        f"{report.severity} drift on {len(drifted)} of {len(report.features)} feature(s)"
        + (f" ({names})" if drifted else "")
        + f" in {stats.rows} rows of v{canary.candidate_version}; "
        + f"allowed: severity up to {allowed}"
        + (f", a share up to {metric.threshold:g}" if metric.threshold is not None else "")
    )
    return MetricComparison(metric.name, share, None, metric.limit, stats.rows, passed, detail, evidence)
