"""Building profiles: the reference (quantile edges) and current windows (fixed edges).

:func:`build_reference` reads the whole reference data set (it must fit in
memory), places ``bins`` + 1 edges at its quantiles (the distinct values
themselves when there are no more than that) and counts it. A
:class:`ProfileAccumulator` bins any number of chunks into a reference's edges
and slots in bounded memory.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift._kernels import (
    CELLS,
    CategoryEncoder,
    NumericBinner,
    Scratch,
    category_texts,
    cell_of,
    hash_texts,
    tail_of,
)
from modelpilot.drift._lanes import run_lanes
from modelpilot.drift.frames import (
    DEFAULT_CHUNK_ROWS,
    Categorical,
    frame_rows,
    iter_chunks,
    to_categorical_counted,
    to_float,
)
from modelpilot.drift.profile import (
    MAX_UNSEEN_EXAMPLES,
    CategoricalProfile,
    FeatureProfile,
    NumericProfile,
    Profile,
    combine_scaled,
)
from modelpilot.exceptions import DataError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from modelpilot.domain.model import FeatureSpec
    from modelpilot.drift.frames import Chunk

__all__ = ["ProfileAccumulator", "build_reference", "infer_schema"]

MAX_OTHER_VALUES = 10_000
#: reference values beyond the listed ones are remembered by a 64-bit hash, up to this many (8 MB)
MAX_LEVEL_HASHES = 1_000_000
#: "other" slots: reference values outside the top-K are spread over them by a hash of the value
OTHER_SLOTS = 64


def infer_schema(columns: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Return ``(name, "numeric"|"categorical")`` per column: numeric when ≥ 95 % of present values parse."""
    schema = []
    for name, values in columns.items():
        if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":
            schema.append((name, "numeric"))
            continue
        if isinstance(values, Categorical):
            schema.append((name, "categorical"))
            continue
        floats, errors = to_float(values)
        present = int(np.count_nonzero(~np.isnan(floats))) + errors
        schema.append((name, "numeric" if present and errors <= 0.05 * present else "categorical"))
    return schema


def build_reference(
    source: Mapping[str, Any] | Iterable[Chunk],
    schema: Sequence[FeatureSpec] | None = None,
    *,
    bins: int = 1000,
    top_k: int = 100,
    meta: dict[str, Any] | None = None,
) -> Profile:
    """Build a reference profile from an in-memory frame or chunks.

    Parameters
    ----------
    source:
        Column name → array / :class:`Categorical`, or an iterable of chunks.
    schema:
        The features to profile (name, type, bounds); inferred from the data when None.
    bins:
        Equal-mass fine bins per numeric feature.
    top_k:
        Categorical values kept individually; the rest count as "other".
    """
    if bins < 2 or top_k < 1:
        raise DataError("a reference profile needs bins >= 2 and top_k >= 1")
    columns: dict[str, list[Any]] = {}
    rows = corrupt = 0
    type_errors: Counter[str] = Counter()
    for chunk in iter_chunks(source):
        rows += chunk.rows
        corrupt += chunk.corrupt_rows
        type_errors.update(chunk.type_errors)
        for name, values in chunk.columns.items():
            columns.setdefault(name, []).append(values)
    if rows == 0:
        raise DataError(f"the reference data has no readable rows ({corrupt} corrupt records)")
    joined = {name: _concat(parts) for name, parts in columns.items()}
    specs = (
        [(s.name, s.type, s.minimum, s.maximum, s.allowed_values) for s in schema]
        if schema
        else [(n, k, None, None, None) for n, k in infer_schema(joined)]
    )
    missing = [s[0] for s in specs if s[0] not in joined]
    if missing:
        raise DataError(f"the reference data lacks the feature column(s) {', '.join(missing)}", columns=missing)
    features: dict[str, FeatureProfile] = {}
    for name, kind, low, high, allowed in specs:
        if kind == "numeric":
            values, errors = to_float(joined[name])
            features[name] = _numeric_reference(name, values, bins, (low, high))
            features[name].type_errors = errors + type_errors.get(name, 0)
        else:
            encoded, bad = to_categorical_counted(joined[name])
            features[name] = _categorical_reference(name, encoded, top_k, list(allowed) if allowed else None)
            features[name].type_errors = bad + type_errors.get(name, 0)
    extra = {n: rows for n in joined if n not in features}
    return Profile(features, rows, corrupt, extra, {"bins": bins, "top_k": top_k, **(meta or {})})


def _concat(parts: list[Any]) -> Any:
    if all(isinstance(p, Categorical) for p in parts):
        cats: dict[Any, int] = {}
        codes = []
        for p in parts:
            remap = np.asarray([cats.setdefault(c, len(cats)) for c in p.categories] + [-1], dtype=np.intp)
            codes.append(remap[p.codes])
        return Categorical(np.concatenate(codes), list(cats))
    if all(isinstance(p, np.ndarray) and p.dtype.kind in "fiub" for p in parts):
        return np.concatenate(parts)
    return np.concatenate(
        [
            np.asarray(
                p if not isinstance(p, Categorical) else np.asarray([*p.categories, None], dtype=object)[p.codes],
                dtype=object,
            )
            for p in parts
        ]
    )


def _numeric_reference(
    name: str, values: np.ndarray, bins: int, bounds: tuple[float | None, float | None]
) -> NumericProfile:
    finite = np.sort(values[np.isfinite(values)])
    if len(finite) == 0:
        edges = np.zeros(1)
    elif 1 + np.count_nonzero(np.diff(finite)) <= bins + 1:
        edges = np.unique(finite)
    else:
        # linear-interpolation quantiles (numpy's default method) on the sorted values
        pos = np.linspace(0.0, 1.0, bins + 1) * (len(finite) - 1)
        low = np.floor(pos).astype(np.intp)
        high = np.minimum(low + 1, len(finite) - 1)
        frac = pos - low
        edges = np.unique(finite[low] + frac * (finite[high] - finite[low]))
        edges[0], edges[-1] = finite[0], finite[-1]
    profile = NumericProfile(name, edges, np.zeros(len(edges) + 1, dtype=np.int64), bounds=bounds)
    return add_numeric(profile, NumericBinner(edges), values)


def add_numeric(
    profile: NumericProfile, binner: NumericBinner, x: np.ndarray, scratch: Scratch | None = None
) -> NumericProfile:
    """Add the values ``x`` (NaN = missing) to ``profile`` in place and return it."""
    chunk = binner.chunk(x, scratch or Scratch())
    stats, counts, sums = chunk.stats, chunk.counts, chunk.sums
    profile.counts += counts
    assert profile.sums is not None
    profile.sums += sums
    profile.missing += stats.n_missing
    profile.posinf += stats.n_posinf
    profile.neginf += stats.n_neginf
    profile.n_finite, profile.mean, profile.m2, profile.scale = combine_scaled(
        (profile.n_finite, profile.mean, profile.m2, profile.scale),
        (stats.n_finite, stats.mean, stats.m2, stats.scale),
    )
    profile.minimum = min(profile.minimum, stats.minimum)
    profile.maximum = max(profile.maximum, stats.maximum)
    lo, hi = float(profile.edges[0]), float(profile.edges[-1])
    if stats.minimum < lo:
        below = x[x < lo]
        below = below[np.isfinite(below)]
        profile.tail_below += float(np.sum(lo - below))
        profile.n_below += len(below)
    if stats.maximum > hi:
        above = x[x > hi]
        above = above[np.isfinite(above)]
        profile.tail_above += float(np.sum(above - hi))
        profile.n_above += len(above)
    low, high = profile.bounds
    if low is not None and stats.minimum < low:
        profile.out_of_bounds += int(np.count_nonzero(x < low))
    if high is not None and stats.maximum > high:
        profile.out_of_bounds += int(np.count_nonzero(x > high))
    return profile


def _categorical_reference(name: str, values: Categorical, top_k: int, allowed: list[str] | None) -> CategoricalProfile:
    per_code = np.bincount(values.codes[values.codes >= 0], minlength=len(values.categories))
    present = np.flatnonzero(per_code > 0)
    index, texts_present = category_texts([values.categories[k] for k in present])
    tally: Counter[str] = Counter()
    for k, text in zip(present[index].tolist(), texts_present, strict=True):
        tally[text] += int(per_code[k])
    ranked = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))
    texts = [v for v, _ in ranked]
    level_counts = np.asarray([c for _, c in ranked], dtype=np.int64)
    top = texts[:top_k]
    salt, hashes = _salt_for(texts, len(top))
    tail = OTHER_SLOTS if len(texts) > top_k else 1
    counts = np.zeros(len(top) + tail + 1, dtype=np.int64)
    counts[: len(top)] = level_counts[: len(top)]
    if len(texts) > top_k:
        np.add.at(counts, len(top) + tail_of(hashes[top_k:], tail), level_counts[top_k:])
    cells = np.bincount(cell_of(hashes), weights=level_counts, minlength=CELLS).astype(np.int64)
    other = sorted(texts[top_k : top_k + MAX_OTHER_VALUES])
    beyond = np.sort(hashes[top_k + MAX_OTHER_VALUES : top_k + MAX_OTHER_VALUES + MAX_LEVEL_HASHES])
    missing = len(values) - int(counts.sum())
    return CategoricalProfile(
        name, top, other, counts, missing, allowed=allowed, cells=cells, salt=salt, level_hashes=beyond
    )


def _salt_for(texts: list[str], top: int) -> tuple[int, np.ndarray]:
    """Return the first salt (of 64) whose test cells separate the top values, and every value's hash.

    The salt depends only on which values are the top ones, never on their counts; with
    :data:`CELLS` cells, salt 0 separates 100 values three times in four.
    """
    best = (top + 1, 0)
    for salt in range(64):
        clashes = top - len(np.unique(cell_of(hash_texts(texts[:top], salt))))
        if clashes < best[0]:
            best = (clashes, salt)
        if clashes == 0:
            break
    return best[1], hash_texts(texts, best[1])


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class ProfileAccumulator:
    """Bins chunks into a reference profile's edges and slots; :meth:`profile` returns the sum so far.

    The features of a chunk are binned in parallel lanes (:mod:`modelpilot.drift._lanes`); each
    feature still sees its chunks in order, so the profile is bit-identical to a serial run.
    """

    def __init__(self, reference: Profile) -> None:
        self.reference = reference
        self.current = reference.empty_like()
        # binners are built in the lanes on first use: building the lookup table is work too
        self._binners: dict[str, NumericBinner] = {}
        self._local = threading.local()
        self._encoders = {
            n: CategoryEncoder(f.values, f.other_values, salt=f.salt, tail=f.tail, level_hashes=f.level_hashes)
            for n, f in reference.features.items()
            if isinstance(f, CategoricalProfile)
        }

    def add(self, chunk: Chunk) -> None:
        """Add one chunk's rows."""
        cur = self._count_rows(chunk.columns, chunk.rows, chunk.corrupt_rows)
        work = []
        for name, feature in cur.features.items():
            values = chunk.columns.get(name)
            if values is None:
                feature.absent += chunk.rows
            else:
                work.append((feature, [values], chunk.type_errors.get(name, 0)))
        run_lanes(self._add_feature, work)

    def _count_rows(self, columns: Mapping[str, Any], rows: int, corrupt: int) -> Profile:
        cur = self.current
        cur.rows += rows
        cur.corrupt_rows += corrupt
        for name in columns:
            if name not in cur.features:
                cur.extra_columns[name] = cur.extra_columns.get(name, 0) + rows
        return cur

    def _add_feature(self, item: tuple[FeatureProfile, list[Any], int]) -> None:
        """Add a feature's parts in order (one lane: no other thread touches this feature)."""
        feature, parts, type_errors = item
        feature.type_errors += type_errors
        for values in parts:
            if isinstance(feature, NumericProfile):
                x, errors = to_float(values)
                feature.type_errors += errors
                add_numeric(feature, self._binner(feature.name), x, self._scratch())
            else:
                assert isinstance(feature, CategoricalProfile)
                encoded, bad = to_categorical_counted(values)
                feature.type_errors += bad
                self._add_categorical(feature, encoded)

    def _binner(self, name: str) -> NumericBinner:
        binner = self._binners.get(name)
        if binner is None:
            feature = self.reference.features[name]
            assert isinstance(feature, NumericProfile)
            binner = self._binners[name] = NumericBinner(feature.edges)
        return binner

    def _scratch(self) -> Scratch:
        scratch: Scratch | None = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = Scratch()
        return scratch

    def _add_categorical(self, feature: CategoricalProfile, values: Categorical) -> None:
        counts, missing, unseen, cells = self._encoders[feature.name].count_all(values.codes, values.categories)
        feature.counts += counts
        if feature.cells is not None:
            feature.cells += cells
        feature.missing += missing
        for key, value in unseen.items():
            feature.unseen_values[key] = feature.unseen_values.get(key, 0) + value
        if len(feature.unseen_values) > 4 * MAX_UNSEEN_EXAMPLES:
            feature.unseen_values = dict(
                sorted(feature.unseen_values.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_UNSEEN_EXAMPLES]
            )

    def add_all(self, chunks: Iterable[Chunk] | Mapping[str, Any]) -> Profile:
        """Add every chunk (or an in-memory frame) and return the profile.

        A frame is cut into the same chunks :func:`~modelpilot.drift.frames.chunk_frame` makes,
        each column binned chunk after chunk in its own lane.
        """
        if not isinstance(chunks, Mapping):
            for chunk in chunks:
                self.add(chunk)
            return self.profile()
        total = frame_rows(chunks)
        if total == 0:
            return self.profile()
        starts = range(0, total, DEFAULT_CHUNK_ROWS)
        cur = self._count_rows(chunks, total, 0)
        work = []
        for name, feature in cur.features.items():
            values = chunks.get(name)
            if values is None:
                feature.absent += total
            else:
                work.append((feature, [values[i : i + DEFAULT_CHUNK_ROWS] for i in starts], 0))
        run_lanes(self._add_feature, work)
        return self.profile()

    def profile(self) -> Profile:
        """Return the current window's profile (unseen examples trimmed)."""
        for feature in self.current.features.values():
            if isinstance(feature, CategoricalProfile):
                feature.unseen_values = dict(
                    sorted(feature.unseen_values.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_UNSEEN_EXAMPLES]
                )
        return self.current
