"""Data quality of a capture window, per feature and for the data set.

Rates are over the window's rows: missing (absent column counts as missing),
out of bounds (numeric: outside the schema's bounds when the manifest gives
them, else outside the reference's observed range), type errors (text that is
no number in a numeric column), unseen categories (values never seen in the
reference). Columns the reference has but the window lacks, and extra columns,
are reported for the data set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift.profile import CategoricalProfile, NumericProfile

if TYPE_CHECKING:
    from modelpilot.drift.profile import FeatureProfile, Profile
    from modelpilot.policy.drift import QualityThresholds

__all__ = ["VANISHED_EXPECTED", "feature_quality", "missing_columns"]

VANISHED_EXPECTED = 5.0


def feature_quality(ref: FeatureProfile, cur: FeatureProfile, rows: int, limits: QualityThresholds) -> dict[str, Any]:
    """Return the quality rates of one feature and which limits they break."""
    total = max(rows, 1)
    out: dict[str, Any] = {
        "rows": rows,
        "missing": cur.missing + cur.absent,
        "missing_rate": (cur.missing + cur.absent) / total,
    }
    breaches: list[str] = []
    if out["missing_rate"] > limits.max_missing_rate:
        breaches.append(f"missing rate {out['missing_rate']:.1%} > {limits.max_missing_rate:.1%}")
    if isinstance(cur, NumericProfile) and isinstance(ref, NumericProfile):
        oob = _out_of_range(ref, cur)
        out.update(
            out_of_bounds=oob,
            out_of_bounds_rate=oob / total,
            bounds_source="schema" if ref.bounds != (None, None) else "reference range",
            type_errors=cur.type_errors,
            type_error_rate=cur.type_errors / total,
            infinite=cur.posinf + cur.neginf,
        )
        if out["out_of_bounds_rate"] > limits.max_out_of_bounds_rate:
            breaches.append(
                f"out-of-bounds rate {out['out_of_bounds_rate']:.1%} > "
                f"{limits.max_out_of_bounds_rate:.1%} ({out['bounds_source']})"
            )
        if out["type_error_rate"] > limits.max_type_error_rate:
            breaches.append(f"type-error rate {out['type_error_rate']:.1%} > {limits.max_type_error_rate:.1%}")
    elif isinstance(cur, CategoricalProfile) and isinstance(ref, CategoricalProfile):
        present = max(cur.n, 1)
        vanished, vanished_share = _vanished(ref, cur)
        out.update(
            unseen=cur.unseen,
            unseen_rate=cur.unseen / present,
            unseen_values=cur.unseen_values,
            type_errors=cur.type_errors,
            type_error_rate=cur.type_errors / total,
            vanished_values=vanished,
            vanished_share=vanished_share,
        )
        if out["type_error_rate"] > limits.max_type_error_rate:
            breaches.append(f"type-error rate {out['type_error_rate']:.1%} > {limits.max_type_error_rate:.1%}")
        if out["unseen_rate"] > limits.max_unseen_rate:
            breaches.append(f"unseen-category rate {out['unseen_rate']:.1%} > {limits.max_unseen_rate:.1%}")
    out["breaches"] = breaches
    return out


def _vanished(ref: CategoricalProfile, cur: CategoricalProfile, limit: int = 20) -> tuple[dict[str, float], float]:
    """Top reference values expected at least 5 times in the window but absent.

    Returns (the ``limit`` largest: value → reference share, the reference share of all of them).
    """
    if ref.n == 0 or cur.n == 0:
        return {}, 0.0
    top = len(ref.values)
    share = ref.counts[:top] / ref.n
    gone = np.flatnonzero((cur.counts[:top] == 0) & (share * cur.n >= VANISHED_EXPECTED))
    total = float(share[gone].sum())
    gone = gone[np.argsort(-share[gone], kind="stable")][:limit]
    return {ref.values[i]: float(share[i]) for i in gone}, total


def _out_of_range(ref: NumericProfile, cur: NumericProfile) -> int:
    if ref.bounds != (None, None):
        return cur.out_of_bounds
    return cur.n_below + cur.n_above + cur.posinf + cur.neginf


def missing_columns(reference: Profile, current: Profile) -> list[str]:
    """Return the reference features the window never had."""
    return [name for name, f in current.features.items() if current.rows and f.absent >= current.rows]
