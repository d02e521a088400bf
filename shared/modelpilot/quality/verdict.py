"""From a window's numbers to breaches and a severity.

* a realised metric (enough labelled rows) that breaks a threshold: the rule's severity (critical by default);
* an estimated metric (too few labels yet, estimate reliable) that breaks a threshold: a warning;
* an estimate whose band missed the realised value (the model is no longer calibrated: concept drift): a warning;
* label coverage below ``min_coverage`` once labels had time to arrive: a warning;
* prediction drift: the drift verdict's severity; attribution NDCG below its threshold: the policy's severity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.policy.quality import ESTIMATED_METRICS, LOWER_IS_BETTER

if TYPE_CHECKING:
    from modelpilot.policy.quality import AttributionPolicy, QualityPolicy, QualityRule

__all__ = ["SEVERITIES", "better", "breach", "judge_attribution", "judge_version", "max_severity", "rule_breach"]

SEVERITIES = ("none", "warning", "critical")


def max_severity(*levels: str) -> str:
    """The most severe of ``levels``."""
    return max(levels, key=SEVERITIES.index, default="none")


def breach(check: str, severity: str, message: str, **details: Any) -> dict[str, Any]:
    """One breach: which check, how severe, a human line and the numbers."""
    return {"check": check, "severity": severity, "message": message, **details}


def rule_breach(rule: QualityRule, observed: float | None, reference: float | None) -> str | None:
    """Return why ``observed`` breaks ``rule`` (None when it holds or cannot be judged)."""
    if observed is None:
        return None
    if rule.min is not None and observed < rule.min:
        return f"{rule.metric} {observed:.4g} below {rule.min:g}"
    if rule.max is not None and observed > rule.max:
        return f"{rule.metric} {observed:.4g} above {rule.max:g}"
    if reference is None or not rule.against_reference:
        return None
    scale = abs(reference) if rule.relative else 1.0
    unit = " of the reference" if rule.relative else ""
    if rule.max_drop is not None and scale > 0 and (reference - observed) / scale > rule.max_drop:
        drop = f"{rule.max_drop:g}{unit}"
        return f"{rule.metric} {observed:.4g} dropped more than {drop} below the reference {reference:.4g}"
    if rule.max_rise is not None and scale > 0 and (observed - reference) / scale > rule.max_rise:
        return (
            f"{rule.metric} {observed:.4g} rose more than {rule.max_rise:g}{unit} above the reference {reference:.4g}"
        )
    return None


def judge_version(
    group: dict[str, Any], policy: QualityPolicy, reference: dict[str, float | None], *, coverage_due: bool
) -> list[dict[str, Any]]:
    """Breaches of one version's numbers in one window (see the module docstring)."""
    out: list[dict[str, Any]] = []
    version = group.get("version")
    labelled = int(group.get("labelled", 0))
    enough = labelled >= policy.min_labelled_rows
    metrics: dict[str, float | None] = group.get("metrics") or {}
    estimated: dict[str, Any] = group.get("estimated") or {}
    reliable = bool((group.get("estimate_reliability") or {}).get("reliable", False))
    for rule in policy.thresholds:
        if enough:
            why = rule_breach(rule, metrics.get(rule.metric), reference.get(rule.metric))
            if why:
                out.append(
                    breach(
                        "metric",
                        rule.severity,
                        f"v{version}: {why}",
                        metric=rule.metric,
                        version=version,
                        observed=metrics.get(rule.metric),
                        expected=str(rule),
                        labelled=labelled,
                    )
                )
        elif rule.metric in ESTIMATED_METRICS and reliable and estimated.get(rule.metric):
            value = estimated[rule.metric]["value"]
            why = rule_breach(rule, value, reference.get(rule.metric))
            if why:
                out.append(
                    breach(
                        "estimate",
                        "warning",
                        f"v{version}: estimated {why} ({labelled} labels so far)",
                        metric=rule.metric,
                        version=version,
                        observed=value,
                        expected=str(rule),
                    )
                )
    check = group.get("estimate_check") or {}
    missed = [m for m, c in check.items() if c.get("within") is False]
    if missed and enough:
        out.append(
            breach(
                "estimate_unreliable",
                "warning",
                f"v{version}: realised {', '.join(missed)} outside the estimate's band: the scores are no longer "
                "calibrated (P(label | inputs) changed)",
                version=version,
                metrics=missed,
            )
        )
    coverage = group.get("coverage")
    if coverage_due and coverage is not None and group.get("predictions") and coverage < policy.min_coverage:
        out.append(
            breach(
                "coverage",
                "warning",
                f"v{version}: label coverage {coverage:.1%} below {policy.min_coverage:.1%}",
                version=version,
                observed=coverage,
                expected=policy.min_coverage,
            )
        )
    return out


def judge_attribution(section: dict[str, Any] | None, policy: AttributionPolicy | None) -> list[dict[str, Any]]:
    """The attribution breach, when NDCG fell below the threshold with enough rows."""
    if not section or policy is None or section.get("ndcg") is None or section.get("rows", 0) < policy.min_rows:
        return []
    value = float(section["ndcg"])
    if value >= policy.threshold:
        return []
    movers = [c["feature"] for c in section.get("changes", [])[:3] if c.get("rank_change")]
    return [
        breach(
            "attribution",
            policy.severity,
            f"feature-attribution NDCG {value:.3f} below {policy.threshold:g}"
            + (f" (moved: {', '.join(movers)})" if movers else ""),
            observed=value,
            expected=policy.threshold,
        )
    ]


def better(metric: str, a: float, b: float) -> bool:
    """True when ``a`` is better than ``b`` for ``metric``."""
    return a < b if metric in LOWER_IS_BETTER else a > b
