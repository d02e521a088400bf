"""Binning kernels: values → bin counts on fixed edges, strings → category slots.

Bins follow the convention ``bin i = (edges[i-1], edges[i]]`` with open outer
bins ``(-inf, edges[0]]`` and ``(edges[-1], +inf)``, so ``cumsum(counts)[i]`` is
exactly ``#{x <= edges[i]}`` (the empirical CDF at each edge).

:class:`NumericBinner` avoids a binary search per value: a uniform grid of cells
over the edge range and a lookup table give the bin of every cell that holds no
edge (nor borders one); only values in those few "ambiguous" cells fall back to
``np.searchsorted``. The result is identical to ``np.searchsorted(edges, x)``.

Where the optional native kernel (``_binning.c``, built with the package when a C compiler is
there) is importable, :meth:`NumericBinner.chunk` runs it instead: two passes per value, the GIL
released, the same counts, sums and moments bit for bit (:mod:`modelpilot.drift._native` loads it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift._native import NativeKernel, native_kernel

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CELLS",
    "CategoryEncoder",
    "NumericBinner",
    "NumericChunk",
    "NumericChunkStats",
    "Scratch",
    "cell_of",
    "hash_texts",
    "numeric_chunk_stats",
    "scale_for",
    "tail_of",
]

_GRID = 1 << 17
_AMBIGUOUS = -1
_MAX_ROUNDS = 3
_SMALL = 256


@dataclass
class NumericChunk:
    """One chunk through a binner: its moments, bin counts and sums."""

    stats: NumericChunkStats
    counts: np.ndarray
    sums: np.ndarray


class Scratch:
    """Reusable work buffers: fresh large temporaries cost page faults on every chunk."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, dtype: type) -> np.ndarray:
        """Return a buffer of ``n`` items (contents undefined), growing it when needed."""
        buf = self._buffers.get(name)
        if buf is None or len(buf) < n:
            buf = self._buffers[name] = np.empty(max(n, 1024), dtype=dtype)
        return buf[:n]


class NumericBinner:
    """Counts values into the bins of fixed, sorted, unique ``edges``.

    A uniform grid of ``2**17`` cells spans the edges; a lookup table gives, for
    each cell, a lower bound of the bin of any value in it, and at most
    ``rounds`` vectorised steps ``bin += x > edges[bin]`` make it exact. Cells
    crowded with more than ``_MAX_ROUNDS`` edges (heavy tails, near-ties) are
    resolved with ``np.searchsorted`` for their values only.

    Parameters
    ----------
    edges:
        Sorted unique float64 bin edges (at least one).
    """

    def __init__(self, edges: np.ndarray) -> None:
        self.edges = np.ascontiguousarray(edges, dtype=np.float64)
        self.nbins = len(self.edges) + 1
        self._lut: np.ndarray | None = None
        self.rounds = 0
        self._crowded = False
        self._lut16: np.ndarray | None = None
        lo, hi = float(self.edges[0]), float(self.edges[-1])
        span = hi - lo
        if len(self.edges) < 8 or not np.isfinite(span) or span <= 0:
            return
        width = span / (_GRID - 2)
        self._lo = lo - width
        self._scale = 1.0 / width
        if not np.isfinite(self._scale) or width <= 0:
            return
        # cell k (1.._GRID) covers [lo_g + (k-1)w, lo_g + k w); 0 and _GRID+1 are outside the grid.
        # Bounds are taken one cell wider on each side, so a cell index off by one
        # through rounding still yields the exact bin.
        # points[j] = lo_g + (j - 1) w: cell j+1 starts at points[j + 1]; its widened bounds are
        # points[j] and points[j + 3] (one search serves both)
        native = native_kernel()
        if native is not None:
            lut = np.empty(_GRID + 3, dtype=np.intp)
            out = np.zeros(2, dtype=np.int64)
            native.lookup_table(
                self.edges.ctypes.data,
                len(self.edges),
                self._lo,
                width,
                _GRID,
                _MAX_ROUNDS,
                lut.ctypes.data,
                out.ctypes.data,
            )
            self.rounds, self._crowded = int(out[0]), bool(out[1])
            self._set_table(lut, width)
            if len(self.edges) <= np.iinfo(np.int16).max:  # the native kernel's compact copy of the table
                self._lut16 = lut.astype(np.int16)
            return
        points = self._lo + width * np.arange(-1.0, _GRID + 3)
        below = _count_below(self.edges, points)
        lower, upper = below[: _GRID + 1], below[3:]
        steps = upper - lower
        crowded = steps > _MAX_ROUNDS
        self.rounds = int(steps[~crowded].max(initial=0))
        self._crowded = bool(crowded.any())
        inner = np.where(crowded, _AMBIGUOUS, lower)
        self._set_table(np.concatenate([[0], inner, [len(self.edges)]]).astype(np.intp), width)

    def _set_table(self, lut: np.ndarray, width: float) -> None:
        self._lut = lut
        self._padded = np.append(self.edges, np.inf)
        # the cell index is (x - origin) * scale: the "+1" of cell 1 folded into the origin
        self._origin = self._lo - width

    def count(self, x: np.ndarray, *, nan_count: int | None = None) -> np.ndarray:
        """Return bin counts (length ``nbins``) of the non-NaN values of ``x``.

        NaN values are not counted (they are missing). ``nan_count`` may be passed
        when already known.
        """
        x = np.asarray(x, dtype=np.float64)
        if nan_count is None:
            nan_count = int(np.count_nonzero(np.isnan(x)))
        bins = self.bin_index(x)
        counts = np.bincount(bins, minlength=self.nbins)
        if nan_count:
            # NaN lands in bin 0 on the grid path and in the top bin on the search path
            counts[-1 if self._lut is None or len(x) < _SMALL else 0] -= nan_count
        return counts.astype(np.int64, copy=False)

    def count_and_sum(
        self, x: np.ndarray, *, nan_count: int | None = None, scratch: Scratch | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(counts, sums)`` per bin; ``sums`` of the inner bins only (outer bins 0)."""
        x = np.asarray(x, dtype=np.float64)
        if nan_count is None:
            nan_count = int(np.count_nonzero(np.isnan(x)))
        bins = self.bin_index(x, scratch)
        counts = np.bincount(bins, minlength=self.nbins)
        if nan_count:
            counts[-1 if self._lut is None or len(x) < _SMALL else 0] -= nan_count
        sums = np.bincount(bins, weights=x, minlength=self.nbins)
        sums[0] = sums[-1] = 0.0
        return counts.astype(np.int64, copy=False), sums

    def chunk(self, x: np.ndarray, scratch: Scratch) -> NumericChunk:
        """Return the moments, bin counts and sums of the values ``x`` (NaN: missing).

        The native kernel when it is built (two passes), else :func:`numeric_chunk_stats` and
        :meth:`count_and_sum`; the same numbers either way.
        """
        x = np.asarray(x, dtype=np.float64)
        native = native_kernel() if self._lut is not None and len(x) >= _SMALL else None
        if native is None:
            stats = numeric_chunk_stats(x, scratch)
            counts, sums = self.count_and_sum(x, nan_count=stats.n_missing, scratch=scratch)
            return NumericChunk(stats, counts, sums)
        return self._native_chunk(native, np.ascontiguousarray(x), scratch)

    def _native_chunk(self, native: NativeKernel, x: np.ndarray, scratch: Scratch) -> NumericChunk:
        assert self._lut is not None
        n = len(x)
        counts = np.zeros(self.nbins, dtype=np.int64)
        sums = np.zeros(self.nbins, dtype=np.float64)
        finite = scratch.get("finite", n, np.float64)
        out_i = np.zeros(4, dtype=np.int64)
        out_d = np.zeros(3, dtype=np.float64)
        lut = self._lut if self._lut16 is None else self._lut16
        (native.chunk if self._lut16 is None else native.chunk16)(
            x.ctypes.data,
            n,
            self.edges.ctypes.data,
            len(self.edges),
            lut.ctypes.data,
            len(lut),
            self._origin,
            self._scale,
            counts.ctypes.data,
            sums.ctypes.data,
            finite.ctypes.data,
            out_i.ctypes.data,
            out_d.ctypes.data,
        )
        sums[0] = sums[-1] = 0.0
        nan, posinf, neginf, n_finite = (int(v) for v in out_i)
        total, lo, hi = (float(v) for v in out_d)
        values = finite[:n_finite] if n_finite < n else x
        if lo == 0.0 or hi == 0.0:  # which zero numpy's min/max return depends on its order of comparisons
            lo, hi = float(values.min()), float(values.max())
        big = max(abs(lo), abs(hi))
        # the moments as numpy's; no finite value, or magnitudes that need scaling: numpy's own, rarely
        if n_finite and (big == 0 or _SAFE_LOW <= big <= _SAFE_HIGH):
            mean = total / n_finite
            scale = scale_for(big)
            m2 = native.squared_deviations(values.ctypes.data, n_finite, mean) / scale / scale if scale else 0.0
            stats = NumericChunkStats(nan, posinf, neginf, n_finite, mean, m2, lo, hi, scale)
        else:
            stats = numeric_chunk_stats(x, scratch)
        return NumericChunk(stats, counts, sums)

    def bin_index(self, x: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
        """Return each value's bin index, ``#{edges < x}`` (NaN: see :meth:`count`).

        With ``scratch`` the result lives in its buffers: use it before the next call.
        """
        if self._lut is None or len(x) < _SMALL:
            return np.searchsorted(self.edges, x, side="left")
        n = len(x)
        work = scratch or Scratch()
        buf = work.get("f", n, np.float64)
        cells = work.get("cells", n, np.intp)
        with np.errstate(invalid="ignore", over="ignore"):  # huge values overflow to ±inf: clamped below
            np.subtract(x, self._origin, out=buf)
            np.multiply(buf, self._scale, out=buf)
            # only the top needs clamping: NaN, -inf and every value below the grid cast to a
            # negative index (or 0), which mode="clip" maps to cell 0, bin 0
            np.minimum(buf, float(_GRID + 1), out=buf)
            np.copyto(cells, buf, casting="unsafe")
        bins = work.get("bins", n, np.intp)
        np.take(self._lut, cells, out=bins, mode="clip")
        if self._crowded and bins.min() < 0:
            amb = np.flatnonzero(bins < 0)
            bins[amb] = np.searchsorted(self.edges, x[amb], side="left")
        if self.rounds:
            flags = work.get("flags", n, np.bool_)
            # bins stay within 0..len(edges) (the padding +inf is never exceeded), so mode="clip" changes
            # nothing but skips the bounds check, which costs more than the gather itself
            for _ in range(self.rounds):
                np.take(self._padded, bins, out=buf, mode="clip")
                np.greater(x, buf, out=flags)
                bins += flags
        return bins


def _count_below(edges: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Return ``#{edges < p}`` for each of the sorted ``points``: ``np.searchsorted(edges, points)``.

    Searching the few edges among the many points and summing is exact and far cheaper.
    """
    first = np.searchsorted(points, edges, side="right")  # edge e is below points[k] for every k >= first(e)
    return np.cumsum(np.bincount(first, minlength=len(points) + 1)[: len(points)])


@dataclass
class NumericChunkStats:
    """Moments of the finite values of a chunk plus missing/infinite counts.

    ``m2`` is scaled: the sum of squared deviations is ``m2 * scale**2``, with ``scale`` a power
    of two at least as large as the largest magnitude (0 when every value is 0), so neither the
    squares nor their sum overflow or underflow at any scale a float64 can hold.
    """

    n_missing: int
    n_posinf: int
    n_neginf: int
    n_finite: int
    mean: float
    m2: float
    minimum: float
    maximum: float
    scale: float = 1.0


# magnitudes for which plain squares neither overflow nor lose precision to subnormals
_SAFE_LOW = 2.0**-200
_SAFE_HIGH = 2.0**200


def scale_for(magnitude: float) -> float:
    """Return the power of two used to scale values of at most ``magnitude`` (0 for 0)."""
    if magnitude == 0 or not math.isfinite(magnitude):
        return 0.0 if magnitude == 0 else 1.0
    return math.ldexp(1.0, math.frexp(magnitude)[1] - 1)


def numeric_chunk_stats(x: np.ndarray, scratch: Scratch | None = None) -> NumericChunkStats:
    """Return the moments of the finite values of ``x`` (two passes, scaled when the magnitudes need it)."""
    with np.errstate(invalid="ignore", over="ignore"):
        total = float(np.sum(x)) if len(x) else 0.0
    counts = (0, 0, 0)
    finite = x
    if not np.isfinite(total):
        nan = np.isnan(x)
        posinf = np.isposinf(x)
        neginf = np.isneginf(x)
        counts = (int(nan.sum()), int(posinf.sum()), int(neginf.sum()))
        finite = x[~(nan | posinf | neginf)]
        total = math.nan
    n = len(finite)
    if n == 0:
        return NumericChunkStats(*counts, 0, 0.0, 0.0, float("inf"), float("-inf"), 0.0)
    lo, hi = float(finite.min()), float(finite.max())
    big = max(abs(lo), abs(hi))
    scale = scale_for(big)
    dev = (scratch or Scratch()).get("f", n, np.float64)
    if big == 0 or _SAFE_LOW <= big <= _SAFE_HIGH:
        mean = (total if math.isfinite(total) else float(np.sum(finite))) / n
        np.subtract(finite, mean, out=dev)
        m2 = _sum_of_squares(dev) / scale / scale if scale else 0.0
    else:  # scaling by a power of two is exact: the scaled moments are the moments of the scaled values
        np.divide(finite, scale, out=dev)
        mean_scaled = float(np.sum(dev)) / n
        dev -= mean_scaled
        m2 = _sum_of_squares(dev)
        mean = mean_scaled * scale
    return NumericChunkStats(*counts, n, mean, m2, lo, hi, scale)


def _sum_of_squares(dev: np.ndarray) -> float:
    # not np.dot: BLAS threads spin on a busy machine; pairwise summation is also more accurate
    np.multiply(dev, dev, out=dev)
    return float(np.add.reduce(dev))


_MISSING_STRINGS = frozenset({"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"})

#: test cells of a categorical feature: every value is hashed into one of them, whatever its count
CELLS = 1 << 14
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = np.uint64(0x100000001B3)
_SHORT = 48
#: texts whose (slot, cell) a :class:`CategoryEncoder` remembers
_ENCODED_TEXTS = 100_000


def hash_texts(texts: Sequence[str], salt: int = 0) -> np.ndarray:
    """Return a stable 64-bit hash (uint64) of each text, the same in every process.

    Texts of up to 48 UTF-8 bytes: FNV-1a over the bytes, vectorised across texts, then the
    splitmix64 finaliser; longer texts: BLAKE2b. ``salt`` selects another member of the family.
    """
    n = len(texts)
    out = np.zeros(n, dtype=np.uint64)
    if not n:
        return out
    raw = [t.encode("utf-8", "surrogatepass") for t in texts]
    lengths = np.fromiter(map(len, raw), dtype=np.int64, count=n)
    short = lengths <= _SHORT
    idx = np.flatnonzero(short)
    if len(idx):
        width = max(1, int(lengths[idx].max()))
        mat = np.array([raw[i] for i in idx], dtype=f"S{width}").view(np.uint8).reshape(len(idx), width)
        lens = lengths[idx]
        h = np.full(len(idx), np.uint64((_FNV_OFFSET ^ salt) & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(width):
                step = (h ^ mat[:, j]) * _FNV_PRIME
                h = np.where(lens > j, step, h)
            h = _splitmix(h ^ lens.astype(np.uint64))
        out[idx] = h
    if len(idx) < n:
        import hashlib

        key = salt.to_bytes(8, "little")
        for i in np.flatnonzero(~short):
            digest = hashlib.blake2b(raw[i], digest_size=8, key=key).digest()
            out[i] = int.from_bytes(digest, "little")
    return out


def _splitmix(h: np.ndarray) -> np.ndarray:
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    out: np.ndarray = h ^ (h >> np.uint64(31))
    return out


def cell_of(hashes: np.ndarray) -> np.ndarray:
    """Return the test cell of each hash."""
    return (hashes & np.uint64(CELLS - 1)).astype(np.intp)


def tail_of(hashes: np.ndarray, tail: int) -> np.ndarray:
    """Return the "other" sub-slot (0 .. tail-1) of each hash."""
    return ((hashes >> np.uint64(32)) % np.uint64(max(tail, 1))).astype(np.intp)


class CategoryEncoder:
    """Maps values to the slots ``[top values..., other x tail, unseen]`` and to the test cells.

    Parameters
    ----------
    values:
        The reference's top values (slot ``i`` for ``values[i]``).
    other_values:
        Reference values outside the top (they count in an ``other`` slot).
    salt, tail, level_hashes:
        The hash family member, the number of ``other`` slots, and the hashes of the reference
        values beyond ``other_values`` (sorted): they are known values too, not unseen ones.
    """

    def __init__(
        self,
        values: list[str],
        other_values: list[str],
        *,
        salt: int = 0,
        tail: int = 1,
        level_hashes: np.ndarray | None = None,
    ) -> None:
        self.slot = {v: i for i, v in enumerate(values)}
        self.other = len(values)
        self.tail = max(tail, 1)
        self.unseen = len(values) + self.tail
        self.salt = salt
        self.known = set(other_values)
        self.level_hashes = level_hashes if level_hashes is not None else np.zeros(0, dtype=np.uint64)
        self.nslots = len(values) + self.tail + 1
        self._memo: dict[str, tuple[int, int]] = {}

    def slots_for(self, categories: list[Any]) -> np.ndarray:
        """Return the slot of each category in a dictionary (-1 for missing)."""
        return self.encode(categories)[0]

    def encode(self, categories: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(slot, cell)`` of each category in a dictionary (-1, -1 for missing).

        Chunks of a window repeat the same few values: each text is hashed once and remembered
        (up to :data:`_ENCODED_TEXTS` texts).
        """
        n = len(categories)
        slots = np.full(n, -1, dtype=np.intp)
        cells = np.full(n, -1, dtype=np.intp)
        index, texts = category_texts(categories)
        if not texts:
            return slots, cells
        if len(texts) > _ENCODED_TEXTS:
            slots[index], cells[index] = self._encode_texts(texts)
            return slots, cells
        memo = self._memo
        fresh = [t for t in dict.fromkeys(texts) if t not in memo]
        if fresh:
            if len(memo) + len(fresh) > _ENCODED_TEXTS:
                memo.clear()
                fresh = list(dict.fromkeys(texts))
            new_slots, new_cells = self._encode_texts(fresh)
            memo.update(zip(fresh, zip(new_slots.tolist(), new_cells.tolist(), strict=True), strict=True))
        pairs = np.array([memo[t] for t in texts], dtype=np.intp).reshape(-1, 2)
        slots[index], cells[index] = pairs[:, 0], pairs[:, 1]
        return slots, cells

    def _encode_texts(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        hashes = hash_texts(texts, self.salt)
        top = np.fromiter((self.slot.get(t, -1) for t in texts), dtype=np.intp, count=len(texts))
        known = np.fromiter((t in self.known for t in texts), dtype=bool, count=len(texts))
        if len(self.level_hashes):
            pos = np.searchsorted(self.level_hashes, hashes).clip(0, len(self.level_hashes) - 1)
            known |= self.level_hashes[pos] == hashes
        other = np.where(known, self.other + tail_of(hashes, self.tail), self.unseen)
        return np.where(top >= 0, top, other), cell_of(hashes)

    def count_codes(self, codes: np.ndarray, categories: list[Any]) -> tuple[np.ndarray, int, dict[str, int]]:
        """Count dictionary-encoded values: ``codes`` index ``categories`` (-1 = missing).

        Returns ``(slot counts, missing count, unseen value → count)``.
        """
        counts, missing, unseen, _ = self.count_all(codes, categories)
        return counts, missing, unseen

    def count_all(self, codes: np.ndarray, categories: list[Any]) -> tuple[np.ndarray, int, dict[str, int], np.ndarray]:
        """Like :meth:`count_codes`, plus the counts per test cell (length :data:`CELLS`)."""
        slots, cells = self.encode(categories)
        per_code = np.bincount(codes + 1, minlength=len(categories) + 1)
        present = per_code[1:]
        used = slots >= 0
        missing = int(per_code[0]) + int(present[~used].sum())
        counts = np.bincount(slots[used], weights=present[used], minlength=self.nslots).astype(np.int64)
        cell_counts = np.bincount(cells[used], weights=present[used], minlength=CELLS).astype(np.int64)
        unseen: dict[str, int] = {}
        if counts[self.unseen]:
            for code in np.flatnonzero((slots == self.unseen) & (present > 0)):
                unseen[_as_text(categories[code])] = int(present[code])
        return counts, missing, unseen, cell_counts


def category_texts(categories: list[Any]) -> tuple[np.ndarray, list[str]]:
    """Return the positions of the categories that are values (not missing) and their texts."""
    index: list[int] = []
    texts: list[str] = []
    for i, cat in enumerate(categories):
        if cat is None or (isinstance(cat, float) and cat != cat):
            continue
        key = cat if isinstance(cat, str) else _as_text(cat)
        if key not in _MISSING_STRINGS:
            index.append(i)
            texts.append(key)
    return np.asarray(index, dtype=np.intp), texts


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _log_fallback(exc: Exception) -> None:
    import logging

    logging.getLogger("modelpilot.drift").debug("dictionary encoding falls back to Python: %s", exc)


def dictionary_encode(values: Any) -> tuple[np.ndarray, list[Any]]:
    """Return ``(codes, categories)`` of an array of hashable values (None/NaN → -1)."""
    codes, categories, _ = dictionary_encode_counted(values)
    return codes, categories


def dictionary_encode_counted(values: Any) -> tuple[np.ndarray, list[Any], int]:
    """Return ``(codes, categories, bad)``; objects, lists and unhashable values are missing, counted in ``bad``."""
    arr = np.asarray(values, dtype=object)
    try:
        import pyarrow as pa

        encoded = pa.array(arr, from_pandas=True)
        if pa.types.is_nested(encoded.type):
            raise TypeError("nested values")
        encoded = encoded.dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        codes = (
            np.where(np.isnan(codes), -1, codes).astype(np.intp) if codes.dtype.kind == "f" else codes.astype(np.intp)
        )
        return codes, encoded.dictionary.to_pylist(), 0
    except ImportError:
        pass
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:  # mixed types: fall back to Python
        _log_fallback(exc)
    mapping: dict[Any, int] = {}
    codes = np.empty(len(arr), dtype=np.intp)
    bad = 0
    for i, v in enumerate(arr):
        if v is None or (isinstance(v, float) and v != v):
            codes[i] = -1
        elif isinstance(v, dict | list | set | np.ndarray):
            codes[i] = -1
            bad += 1
        else:
            try:
                codes[i] = mapping.setdefault(v, len(mapping))
            except TypeError:  # unhashable
                codes[i] = -1
                bad += 1
    return codes, list(mapping), bad
