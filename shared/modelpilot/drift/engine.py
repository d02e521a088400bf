"""The drift engine: reference profile + current window → :class:`DriftReport`.

:func:`compare_profiles` is the whole decision on two profiles (which may be
merged from many chunks or workers); :func:`compare_frames` is the in-memory
convenience, with an ``exact`` mode that replaces the binned KS and
Wasserstein values by exact ones computed on the raw values.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.exact import ks_exact, wasserstein_exact
from modelpilot.drift.frames import to_float
from modelpilot.drift.metrics import FeatureMetrics, categorical_metrics, coarse_groups, numeric_metrics
from modelpilot.drift.profile import CategoricalProfile, NumericProfile
from modelpilot.drift.quality import feature_quality, missing_columns
from modelpilot.drift.report import REPORT_SCHEMA, REPORT_VERSION, DriftReport
from modelpilot.drift.verdict import adjust_pvalues, dataset_severity, max_severity
from modelpilot.policy.drift import DriftPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from modelpilot.domain.model import FeatureSpec
    from modelpilot.drift.profile import FeatureProfile, Profile

__all__ = ["compare_frames", "compare_profiles"]

_DISPLAY_BINS = 24


def compare_profiles(
    reference: Profile,
    current: Profile,
    policy: DriftPolicy | None = None,
    *,
    context: dict[str, Any] | None = None,
    exact: dict[str, FeatureMetrics] | None = None,
) -> DriftReport:
    """Compare a current profile with its reference and return the report.

    Parameters
    ----------
    reference, current:
        Profiles on the same edges and slots (``current`` from a
        :class:`~modelpilot.drift.builder.ProfileAccumulator` of ``reference``).
    policy:
        Thresholds, correction and quality limits (defaults when None).
    context:
        Report fields: ``report_id``, ``model``, ``environment``, ``version``,
        ``window`` ({start, end}), ``data_uri``, ``reference_uri``, ``files``, ``corrupt_files``.
    exact:
        Per-feature metrics to use instead of the binned ones (exact mode).
    """
    policy = policy or DriftPolicy()
    ctx = dict(context or {})
    rows = current.rows
    items: list[dict[str, Any]] = []
    for name, ref in reference.features.items():
        cur = current.features[name]
        method, threshold, critical, ignored = policy.rule_for(name, ref.kind)
        if isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile):
            metrics = numeric_metrics(ref, cur, coarse_bins=policy.psi_bins)
        elif isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
            metrics = categorical_metrics(ref, cur, coarse_bins=policy.psi_bins)
        else:  # pragma: no cover - profiles built from one another always agree
            raise TypeError(name)
        if exact and name in exact:
            metrics = exact[name]
        effect = _effect(metrics, method)
        items.append(
            {
                "name": name,
                "kind": ref.kind,
                "method": method,
                "threshold": threshold,
                "effect": effect,
                "test": "ks" if ref.kind == "numeric" else "chi2",
                "pvalue": metrics.pvalue,
                "pvalue_corrected": None,
                "n_reference": metrics.n_reference,
                "n_current": metrics.n_current,
                "critical": critical,
                "ignored": ignored,
                "drifted": False,
                "metrics": metrics.to_dict(),
                "quality": feature_quality(ref, cur, rows, policy.quality),
                "histogram": _histogram(ref, cur),
            }
        )
    tested = [it for it in items if not it["ignored"] and it["pvalue"] is not None]
    corrected = adjust_pvalues([it["pvalue"] for it in tested], policy.correction)
    for it, p_adj in zip(tested, corrected, strict=True):
        it["pvalue_corrected"] = p_adj
        it["drifted"] = bool(
            it["effect"] is not None and it["effect"] >= it["threshold"] and p_adj is not None and p_adj < policy.alpha
        )
    items.sort(key=_drift_order)
    drifted = [it["name"] for it in items if it["drifted"]]
    drift_severity = dataset_severity(
        len(drifted),
        len(tested),
        any(it["critical"] and it["drifted"] for it in items),
        warning_share=policy.severity.warning_share,
        critical_share=policy.severity.critical_share,
    )
    quality = _dataset_quality(reference, current, items, policy, ctx)
    severity = max_severity(drift_severity, quality["severity"])
    doc = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "report_id": ctx.get("report_id", "adhoc"),
        "model": ctx.get("model", ""),
        "environment": ctx.get("environment", ""),
        "version": ctx.get("version"),
        "window": ctx.get("window", {"start": None, "end": None}),
        "severity": severity,
        "drift_severity": drift_severity,
        "drifted_features": drifted,
        "drift_share": len(drifted) / len(tested) if tested else 0.0,
        "features": items,
        "quality": quality,
        "settings": {
            "correction": policy.correction,
            "alpha": policy.alpha,
            "psi_bins": policy.psi_bins,
            "fine_bins": reference.meta.get("bins"),
            "mode": "exact" if exact else "binned",
            "severity": policy.severity.model_dump(),
        },
        "reference": {"rows": reference.rows, "uri": ctx.get("reference_uri")},
        "current": {
            "rows": rows,
            "corrupt_rows": current.corrupt_rows,
            "files": ctx.get("files", 0),
            "corrupt_files": ctx.get("corrupt_files", 0),
            "data_uri": ctx.get("data_uri"),
            "corrupt_examples": ctx.get("corrupt_examples", []),
        },
    }
    return DriftReport(doc)


def _effect(metrics: FeatureMetrics, method: str) -> float | None:
    value = {
        "wasserstein": metrics.wasserstein_norm,
        "jensen_shannon": metrics.jensen_shannon,
        "psi": metrics.psi,
        "hellinger": metrics.hellinger,
        "ks": metrics.ks,
        "linf": metrics.linf,
    }[method]
    return None if value is None else float(value)


def _drift_order(item: dict[str, Any]) -> tuple[int, float, str]:
    effect = item["effect"]
    ratio = (
        effect / item["threshold"]
        if effect is not None and math.isfinite(effect)
        else (math.inf if effect is not None else -1.0)
    )
    return (0 if item["drifted"] else 1, -ratio, item["name"])


def _dataset_quality(
    reference: Profile,
    current: Profile,
    items: list[dict[str, Any]],
    policy: DriftPolicy,
    ctx: dict[str, Any],
) -> dict[str, Any]:
    absent = missing_columns(reference, current)
    extra = sorted(current.extra_columns)
    breaches = [f"{it['name']}: {b}" for it in items for b in it["quality"]["breaches"]]
    severity = "warning" if breaches else "none"
    limits = policy.quality
    if absent and limits.missing_columns != "ignore":
        breaches.append(f"missing columns: {', '.join(absent)}")
        severity = max_severity(severity, limits.missing_columns)
    if extra and limits.extra_columns != "ignore":
        breaches.append(f"extra columns: {', '.join(extra)}")
        severity = max_severity(severity, "warning")
    if current.rows == 0:
        breaches.append("the window has no rows")
        severity = max_severity(severity, "warning")
    records = current.rows + current.corrupt_rows
    return {
        "severity": severity,
        "breaches": breaches,
        "missing_columns": absent,
        "extra_columns": extra,
        "rows": current.rows,
        "corrupt_rows": current.corrupt_rows,
        "corrupt_share": current.corrupt_rows / records if records else 0.0,
        "corrupt_files": ctx.get("corrupt_files", 0),
    }


def _histogram(ref: FeatureProfile, cur: FeatureProfile) -> dict[str, Any]:
    if isinstance(ref, CategoricalProfile) and isinstance(cur, CategoricalProfile):
        labels = [*ref.values, "(other)", "(unseen)"]
        k = len(ref.values)
        rp = _display_slots(ref.counts, k) / max(ref.n, 1)
        cp = _display_slots(cur.counts, k) / max(cur.n, 1)
        order = np.argsort(-(rp + cp), kind="stable")[:20]
        return {
            "labels": [labels[i] for i in order],
            "reference": [round(float(rp[i]), 6) for i in order],
            "current": [round(float(cp[i]), 6) for i in order],
        }
    assert isinstance(ref, NumericProfile) and isinstance(cur, NumericProfile)
    starts = coarse_groups(ref.counts, _DISPLAY_BINS)
    rp = np.add.reduceat(ref.counts, starts) / max(ref.n, 1)
    cp = np.add.reduceat(cur.counts, starts) / max(cur.n, 1)
    edges = ref.edges
    bounds = [float(edges[min(s, len(edges) - 1)]) for s in starts[1:]]
    return {
        "edges": bounds,
        "reference": [round(float(v), 6) for v in rp],
        "current": [round(float(v), 6) for v in cp],
        "equal_mass": True,
    }


def _display_slots(counts: np.ndarray, top: int) -> np.ndarray:
    """The slots as shown: the top values, every "other" slot summed into one, unseen."""
    return np.concatenate([counts[:top], [counts[top:-1].sum()], counts[-1:]])


def compare_frames(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    schema: Sequence[FeatureSpec] | None = None,
    policy: DriftPolicy | None = None,
    *,
    exact: bool = False,
    context: dict[str, Any] | None = None,
) -> DriftReport:
    """Profile an in-memory reference and current frame and compare them.

    With ``exact`` the KS statistic/p-value and the Wasserstein distance of the
    numeric features are computed on the raw values (matching scipy), the other
    metrics from the bins.
    """
    policy = policy or DriftPolicy()
    ref_profile = build_reference(reference, schema, bins=policy.bins, top_k=policy.top_k)
    cur_profile = ProfileAccumulator(ref_profile).add_all(current)
    overrides: dict[str, FeatureMetrics] = {}
    if exact:
        for name, feature in ref_profile.features.items():
            if not isinstance(feature, NumericProfile) or name not in current:
                continue
            cur_feature = cur_profile.features[name]
            assert isinstance(cur_feature, NumericProfile)
            metrics = numeric_metrics(feature, cur_feature, coarse_bins=policy.psi_bins)
            a, _ = to_float(reference[name])
            b, _ = to_float(current[name])
            if metrics.n_reference and metrics.n_current:
                metrics.ks, metrics.ks_pvalue = ks_exact(a, b)
                metrics.ks_bound = 0.0
            if metrics.wasserstein is not None:
                metrics.wasserstein = wasserstein_exact(a, b)
                std = feature.std
                metrics.wasserstein_norm = (
                    metrics.wasserstein / std if std > 0 else (0.0 if metrics.wasserstein == 0 else math.inf)
                )
                metrics.wasserstein_bound = 0.0
            overrides[name] = metrics
    return compare_profiles(ref_profile, cur_profile, policy, context=context, exact=overrides or None)
