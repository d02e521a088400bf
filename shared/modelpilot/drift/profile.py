"""Mergeable drift profiles: binned counts and moments per feature.

A *reference profile* is built once from a version's reference data: per
numeric feature, fine bin edges at the reference quantiles (``bins`` equal-mass
bins, default 1,000, plus the open outer bins), the counts in them, the missing
and infinite counts, the moments of the finite values (count, mean, M2 —
merged with Chan's formula) and min/max; per categorical feature the top-K
value counts plus an "other" and an "unseen" slot.

A *current profile* bins a capture window into the reference's edges and slots,
so profiles of separate chunks, files or workers merge by adding their counts
(:meth:`Profile.merge`): the counts are exact, the moments equal to rounding.

Serialisation (:meth:`Profile.to_json` / :meth:`Profile.from_json`) is a JSON
document ``{"format": "modelpilot.drift.profile", "version": 1, ...}`` whose
arrays are base64 of little-endian float64 (edges) or int64 (counts).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelpilot.exceptions import DataError

__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "CategoricalProfile",
    "NumericProfile",
    "Profile",
    "combine_moments",
    "combine_scaled",
]

PROFILE_FORMAT = "modelpilot.drift.profile"
PROFILE_VERSION = 2
#: the versions this build reads: version 1 has no test cells, scale or hashed "other" slots
READABLE_VERSIONS = (1, 2)
MAX_UNSEEN_EXAMPLES = 20


def combine_moments(
    n_a: int, mean_a: float, m2_a: float, n_b: int, mean_b: float, m2_b: float
) -> tuple[int, float, float]:
    """Merge (count, mean, M2) of two samples (Chan, Golub and LeVeque); unscaled, see :func:`combine_scaled`."""
    n = n_a + n_b
    if n_a == 0:
        return n_b, mean_b, m2_b
    if n_b == 0:
        return n_a, mean_a, m2_a
    delta = mean_b - mean_a
    mean = mean_a + delta * (n_b / n)
    m2 = m2_a + m2_b + delta * delta * (n_a * n_b / n)
    return n, mean, m2


def combine_scaled(
    a: tuple[int, float, float, float], b: tuple[int, float, float, float]
) -> tuple[int, float, float, float]:
    """Merge ``(count, mean, m2, scale)`` of two samples, where M2 = ``m2 * scale**2``.

    Chan's formula in units of the larger scale (a power of two at least as large as both
    samples' magnitudes), so the squares never overflow or underflow. A scale of 0 means all
    values were 0.
    """
    n_a, mean_a, m2_a, s_a = a
    n_b, mean_b, m2_b, s_b = b
    if n_a == 0:
        return b
    if n_b == 0:
        return a
    n = n_a + n_b
    s = max(s_a, s_b)
    if s == 0:
        return n, 0.0, 0.0, 0.0
    ra, rb = s_a / s, s_b / s
    delta = mean_b / s - mean_a / s
    mean = mean_a + (delta * (n_b / n)) * s
    m2 = m2_a * ra * ra + m2_b * rb * rb + delta * delta * (n_a * n_b / n)
    return n, mean, m2, s


@dataclass
class NumericProfile:
    """Binned distribution and moments of one numeric feature.

    ``counts[i]`` counts the non-missing values in ``(edges[i-1], edges[i]]``
    (``counts[0]``: ``<= edges[0]``, ``counts[-1]``: ``> edges[-1]``), ±inf
    included. ``tail_below``/``tail_above`` are ``Σ(edges[0] - x)`` over finite
    ``x < edges[0]`` and ``Σ(x - edges[-1])`` over finite ``x > edges[-1]``:
    they make the Wasserstein distance exact outside the reference range.
    The sum of squared deviations is ``m2 * scale**2`` (``scale`` a power of two, see
    :func:`combine_scaled`); version-1 profiles have ``scale`` 1.
    """

    name: str
    edges: np.ndarray
    counts: np.ndarray
    missing: int = 0
    type_errors: int = 0
    posinf: int = 0
    neginf: int = 0
    n_finite: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    tail_below: float = 0.0
    tail_above: float = 0.0
    out_of_bounds: int = 0
    absent: int = 0
    bounds: tuple[float | None, float | None] = (None, None)
    sums: np.ndarray | None = None
    n_below: int = 0
    n_above: int = 0
    scale: float = 1.0

    kind = "numeric"

    def __post_init__(self) -> None:
        if self.sums is None:
            self.sums = np.zeros(len(self.counts), dtype=np.float64)

    @property
    def n(self) -> int:
        """Non-missing values (finite and infinite)."""
        return int(self.counts.sum())

    @property
    def std(self) -> float:
        """Population standard deviation of the finite values (0 when fewer than two)."""
        if self.n_finite < 2 or not math.isfinite(self.m2) or self.m2 <= 0:
            return 0.0
        return math.sqrt(self.m2 / self.n_finite) * self.scale

    def empty_like(self) -> NumericProfile:
        """Return an empty profile on the same edges (for a current window)."""
        return NumericProfile(
            self.name,
            self.edges,
            np.zeros_like(self.counts),
            bounds=self.bounds,
            sums=np.zeros(len(self.counts), dtype=np.float64),
        )

    def merge(self, other: NumericProfile) -> NumericProfile:
        """Return the profile of both samples (same edges required)."""
        if other.edges.shape != self.edges.shape or not np.array_equal(other.edges, self.edges):
            raise DataError(f"cannot merge profiles of {self.name!r}: their bin edges differ", feature=self.name)
        n, mean, m2, scale = combine_scaled(
            (self.n_finite, self.mean, self.m2, self.scale), (other.n_finite, other.mean, other.m2, other.scale)
        )
        return NumericProfile(
            self.name,
            self.edges,
            self.counts + other.counts,
            self.missing + other.missing,
            self.type_errors + other.type_errors,
            self.posinf + other.posinf,
            self.neginf + other.neginf,
            n,
            mean,
            m2,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            self.tail_below + other.tail_below,
            self.tail_above + other.tail_above,
            self.out_of_bounds + other.out_of_bounds,
            self.absent + other.absent,
            self.bounds,
            _sums(self) + _sums(other),
            self.n_below + other.n_below,
            self.n_above + other.n_above,
            scale,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "name": self.name,
            "kind": "numeric",
            "edges": _b64(self.edges, "<f8"),
            "counts": _b64(self.counts, "<i8"),
            "sums": _b64(_sums(self), "<f8"),
            "n_below": self.n_below,
            "n_above": self.n_above,
            "missing": self.missing,
            "type_errors": self.type_errors,
            "posinf": self.posinf,
            "neginf": self.neginf,
            "n_finite": self.n_finite,
            "mean": _num(self.mean),
            "m2": _num(self.m2),
            "scale": self.scale,
            "min": _num(self.minimum),
            "max": _num(self.maximum),
            "tail_below": _num(self.tail_below),
            "tail_above": _num(self.tail_above),
            "out_of_bounds": self.out_of_bounds,
            "absent": self.absent,
            "bounds": list(self.bounds),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericProfile:
        """Parse the JSON form."""
        return cls(
            name=d["name"],
            edges=_unb64(d["edges"], "<f8"),
            counts=_unb64(d["counts"], "<i8"),
            missing=int(d["missing"]),
            type_errors=int(d["type_errors"]),
            posinf=int(d["posinf"]),
            neginf=int(d["neginf"]),
            n_finite=int(d["n_finite"]),
            mean=_unnum(d["mean"]),
            m2=_unnum(d["m2"]),
            minimum=_unnum(d["min"], math.inf),
            maximum=_unnum(d["max"], -math.inf),
            tail_below=_unnum(d["tail_below"]),
            tail_above=_unnum(d["tail_above"]),
            out_of_bounds=int(d.get("out_of_bounds", 0)),
            absent=int(d.get("absent", 0)),
            bounds=tuple(d.get("bounds") or (None, None)),
            sums=_unb64(d["sums"], "<f8"),
            n_below=int(d.get("n_below", 0)),
            n_above=int(d.get("n_above", 0)),
            scale=float(d.get("scale", 1.0)),
        )


@dataclass
class CategoricalProfile:
    """Value counts of one categorical feature.

    ``counts`` are over the slots ``[values..., other x tail, unseen]``: the top-K values one
    slot each, the other reference values spread over ``tail`` slots by a hash of the value
    (so shifts among them stay visible), and values never seen in the reference.
    ``other_values`` lists up to 10,000 of the other reference values; ``level_hashes`` holds
    the hashes of the rest (reference only), so a current value among them is "other", not
    "unseen". ``cells`` counts every value (top, other or unseen alike) in one of
    :data:`~modelpilot.drift._kernels.CELLS` test cells chosen by a hash of the value and
    ``salt``: the chi-squared test runs on them, because cells chosen without looking at the
    counts keep the test calibrated (slots chosen by the reference's own counts do not).
    Profiles of format version 1 have one "other" slot and no cells.
    """

    name: str
    values: list[str]
    other_values: list[str]
    counts: np.ndarray
    missing: int = 0
    absent: int = 0
    unseen_values: dict[str, int] = field(default_factory=dict)
    allowed: list[str] | None = None
    type_errors: int = 0
    cells: np.ndarray | None = None
    salt: int = 0
    level_hashes: np.ndarray | None = None

    kind = "categorical"

    @property
    def n(self) -> int:
        """Non-missing values."""
        return int(self.counts.sum())

    @property
    def unseen(self) -> int:
        """Values never seen in the reference."""
        return int(self.counts[-1])

    @property
    def tail(self) -> int:
        """The number of "other" slots."""
        return len(self.counts) - len(self.values) - 1

    def empty_like(self) -> CategoricalProfile:
        """Return an empty profile with the same slots and cells."""
        return CategoricalProfile(
            self.name,
            self.values,
            self.other_values,
            np.zeros_like(self.counts),
            allowed=self.allowed,
            cells=None if self.cells is None else np.zeros_like(self.cells),
            salt=self.salt,
        )

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        """Return the profile of both samples (same slots and cells required)."""
        if (
            other.values != self.values
            or other.counts.shape != self.counts.shape
            or other.salt != self.salt
            or (self.cells is None) != (other.cells is None)
        ):
            raise DataError(f"cannot merge profiles of {self.name!r}: their categories differ", feature=self.name)
        unseen = dict(self.unseen_values)
        for key, value in other.unseen_values.items():
            unseen[key] = unseen.get(key, 0) + value
        top = dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_UNSEEN_EXAMPLES])
        return CategoricalProfile(
            self.name,
            self.values,
            self.other_values,
            self.counts + other.counts,
            self.missing + other.missing,
            self.absent + other.absent,
            top,
            self.allowed,
            self.type_errors + other.type_errors,
            None if self.cells is None or other.cells is None else self.cells + other.cells,
            self.salt,
            self.level_hashes,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": "categorical",
            "values": self.values,
            "other_values": self.other_values,
            "counts": [int(c) for c in self.counts],
            "missing": self.missing,
            "absent": self.absent,
            "unseen_values": self.unseen_values,
            "allowed": self.allowed,
            "type_errors": self.type_errors,
            "salt": self.salt,
        }
        if self.cells is not None:
            nonzero = np.flatnonzero(self.cells)
            out["cells"] = {
                "size": len(self.cells),
                "index": _b64(nonzero, "<i4"),
                "counts": _b64(self.cells[nonzero], "<i8"),
            }
        if self.level_hashes is not None and len(self.level_hashes):
            out["level_hashes"] = _b64(self.level_hashes, "<u8")
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalProfile:
        """Parse the JSON form."""
        cells = None
        if d.get("cells") is not None:
            cells = np.zeros(int(d["cells"]["size"]), dtype=np.int64)
            cells[_unb64(d["cells"]["index"], "<i4")] = _unb64(d["cells"]["counts"], "<i8")
        hashes = _unb64(d["level_hashes"], "<u8") if d.get("level_hashes") else None
        return cls(
            d["name"],
            list(d["values"]),
            list(d["other_values"]),
            np.asarray(d["counts"], dtype=np.int64),
            int(d["missing"]),
            int(d.get("absent", 0)),
            dict(d.get("unseen_values", {})),
            d.get("allowed"),
            int(d.get("type_errors", 0)),
            cells,
            int(d.get("salt", 0)),
            hashes,
        )


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass
class Profile:
    """The profile of a data set: one entry per feature, in schema order.

    ``rows`` counts the rows read, ``corrupt_rows`` rows that could not be
    parsed, ``extra_columns`` columns present in the data but not in the
    schema (name → rows).
    """

    features: dict[str, FeatureProfile]
    rows: int = 0
    corrupt_rows: int = 0
    extra_columns: dict[str, int] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def empty_like(self) -> Profile:
        """Return an empty profile with the same edges and slots (a current window's start)."""
        return Profile({k: f.empty_like() for k, f in self.features.items()})

    def merge(self, other: Profile) -> Profile:
        """Return the profile of both data sets: counts add exactly."""
        if list(other.features) != list(self.features):
            raise DataError("cannot merge profiles of different feature sets")
        merged: dict[str, FeatureProfile] = {}
        for name, mine in self.features.items():
            theirs = other.features[name]
            merged[name] = _merge_feature(name, mine, theirs)
        extra = dict(self.extra_columns)
        for key, value in other.extra_columns.items():
            extra[key] = extra.get(key, 0) + value
        return Profile(merged, self.rows + other.rows, self.corrupt_rows + other.corrupt_rows, extra, dict(self.meta))

    def to_json(self) -> bytes:
        """Serialise (versioned JSON, arrays base64)."""
        doc = {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "rows": self.rows,
            "corrupt_rows": self.corrupt_rows,
            "extra_columns": self.extra_columns,
            "meta": self.meta,
            "features": [f.to_dict() for f in self.features.values()],
        }
        return json.dumps(doc, sort_keys=True, allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Profile:
        """Parse a serialised profile; raise ``DataError`` when it is not one."""
        try:
            doc = json.loads(data)
            if doc.get("format") != PROFILE_FORMAT:
                raise DataError("not a drift profile (missing format marker)")
            if doc.get("version") not in READABLE_VERSIONS:
                raise DataError(
                    f"unsupported profile version {doc.get('version')!r}; this build reads "
                    f"{', '.join(map(str, READABLE_VERSIONS))}"
                )
            features: dict[str, FeatureProfile] = {}
            for item in doc["features"]:
                parsed: FeatureProfile = (
                    NumericProfile.from_dict(item) if item["kind"] == "numeric" else CategoricalProfile.from_dict(item)
                )
                features[parsed.name] = parsed
            return cls(
                features,
                int(doc["rows"]),
                int(doc["corrupt_rows"]),
                dict(doc["extra_columns"]),
                dict(doc["meta"]),
            )
        except DataError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(f"cannot read drift profile: {exc}") from None


def _merge_feature(name: str, mine: FeatureProfile, theirs: FeatureProfile) -> FeatureProfile:
    if isinstance(mine, NumericProfile) and isinstance(theirs, NumericProfile):
        return mine.merge(theirs)
    if isinstance(mine, CategoricalProfile) and isinstance(theirs, CategoricalProfile):
        return mine.merge(theirs)
    raise DataError(f"cannot merge profiles of {name!r}: its kind differs", feature=name)


def _sums(profile: NumericProfile) -> np.ndarray:
    assert profile.sums is not None
    return profile.sums


def _b64(array: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).astype(dtype[1:], copy=True)


def _num(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _unnum(value: float | str | None, default: float = 0.0) -> float:
    if value is None:
        return default
    return float(value)
