"""The analysis of one canary step: each metric's bad-event ratio, candidate against stable.

For every metric of the environment's ``canary.analysis`` the SLI's metrics source counts
good and total events of each version over the step's window (``$version`` and the
``version`` label set to the version, so one source counts the two apart). A metric
**passes** when ``candidate_bad_ratio - stable_bad_ratio <= threshold``, **fails** when it
is above, and is **inconclusive** when either version has fewer than ``min_samples``
events or the source cannot answer. The analysis fails when any metric fails, is
inconclusive when none fails but one is inconclusive, and passes otherwise. A metric of
``kind: drift`` is judged by :mod:`.canary_drift` on the candidate's captured traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.domain.canary import AnalysisResult, MetricComparison
from modelpilot.exceptions import ModelPilotError, PolicyError
from modelpilot.policy.canary import DEFAULT_ERROR_SLI
from modelpilot.policy.slo import SloSpec

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.canary import Canary
    from modelpilot.policy.canary import CanaryMetric, CanaryPolicy
    from modelpilot.ports import EventCounts
    from modelpilot.service.messagebus import Services

__all__ = ["analyse", "metric_spec"]


def metric_spec(svc: Services, model: str, environment: str, metric: CanaryMetric) -> SloSpec:
    """Return the SLO-shaped spec whose SLI the metric counts; raise ``PolicyError`` for an unknown ``slo``."""
    if metric.slo is not None:
        for spec in svc.policy.model_policy(model).slos:
            if spec.name == metric.slo and spec.environment == environment:
                return spec
        raise PolicyError(
            f"canary metric {metric.name} of {model} {environment} names slo {metric.slo!r}, "
            f"which {model} does not define for {environment}",
            field=f"canary.analysis.{metric.name}.slo",
        )
    sli = metric.sli or DEFAULT_ERROR_SLI
    return SloSpec(name=metric.name, environment=environment, objective=0.99, sli=sli)


def analyse(svc: Services, canary: Canary, policy: CanaryPolicy, start: datetime, end: datetime) -> AnalysisResult:
    """Run every metric of ``policy`` over ``[start, end)`` and return the verdict with its evidence."""
    comparisons = [_compare(svc, canary, metric, policy.min_samples, start, end) for metric in policy.metrics()]
    verdicts = [c.passed for c in comparisons]
    passed: bool | None = False if False in verdicts else (None if None in verdicts else True)
    return AnalysisResult(canary.step, canary.weight, start, end, passed, tuple(comparisons))


def _compare(
    svc: Services, canary: Canary, metric: CanaryMetric, min_samples: int, start: datetime, end: datetime
) -> MetricComparison:
    if metric.kind == "drift":
        from modelpilot.service.canary_drift import compare_drift  # the drift engine's imports only when used

        return compare_drift(svc, canary, metric, min_samples, start, end)
    spec = metric_spec(svc, canary.model, canary.environment, metric)
    source = svc.metrics_sources.get(spec.sli.source)

    def inconclusive(detail: str) -> MetricComparison:
        return MetricComparison(metric.name, None, None, metric.limit, 0, None, detail)

    if source is None:
        return inconclusive(f"no metrics source {spec.sli.source!r} is configured")
    queries = [
        (spec.query(canary.model, version=canary.candidate_version), start, end),
        (spec.query(canary.model, version=canary.stable_version), start, end),
    ]
    try:
        candidate, stable = source.counts_many(queries)
    except ModelPilotError as exc:
        return inconclusive(f"{spec.sli.source}: {exc}")
    samples = int(min(candidate.total, stable.total))
    cand_ratio, stable_ratio = _bad_ratio(candidate), _bad_ratio(stable)
    counts = f"candidate {_n(candidate)} events, stable {_n(stable)} events"
    if cand_ratio is None or stable_ratio is None or samples < min_samples:
        return MetricComparison(
            metric.name,
            cand_ratio,
            stable_ratio,
            metric.limit,
            samples,
            None,
            f"inconclusive: {counts}; at least {min_samples} each are needed",
        )
    difference = cand_ratio - stable_ratio
    passed = difference <= metric.limit
    return MetricComparison(
        metric.name,
        cand_ratio,
        stable_ratio,
        metric.limit,
        samples,
        passed,
        f"candidate {cand_ratio:.4f} - stable {stable_ratio:.4f} = {difference:+.4f} "
        f"{'<=' if passed else '>'} {metric.limit:g} ({counts})",
    )


def _bad_ratio(counts: EventCounts) -> float | None:
    if counts.total <= 0:
        return None
    return max(0.0, min(1.0, (counts.total - counts.good) / counts.total))


def _n(counts: EventCounts) -> str:
    return f"{counts.total:.0f}"
