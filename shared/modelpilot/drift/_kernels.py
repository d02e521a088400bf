"""Binning kernels: values → bin counts on fixed edges, strings → category slots.

Bins follow the convention ``bin i = (edges[i-1], edges[i]]`` with open outer
bins ``(-inf, edges[0]]`` and ``(edges[-1], +inf)``, so ``cumsum(counts)[i]`` is
exactly ``#{x <= edges[i]}`` (the empirical CDF at each edge).

:class:`NumericBinner` avoids a binary search per value: a uniform grid of cells
over the edge range and a lookup table give the bin of every cell that holds no
edge (nor borders one); only values in those few "ambiguous" cells fall back to
``np.searchsorted``. The result is identical to ``np.searchsorted(edges, x)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CategoryEncoder", "NumericBinner", "NumericChunkStats", "Scratch", "numeric_chunk_stats"]

_GRID = 1 << 17
_AMBIGUOUS = -1
_MAX_ROUNDS = 3
_SMALL = 256


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
        starts = self._lo + width * np.arange(_GRID + 1)
        lower = np.searchsorted(self.edges, starts[:-1] - width, side="left")
        upper = np.searchsorted(self.edges, starts[1:] + width, side="left")
        steps = upper - lower
        crowded = steps > _MAX_ROUNDS
        self.rounds = int(steps[~crowded].max(initial=0))
        inner = np.where(crowded, _AMBIGUOUS, lower)
        self._lut = np.concatenate([[0], inner, [len(self.edges)]]).astype(np.intp)
        self._padded = np.append(self.edges, np.inf)

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

    def bin_index(self, x: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
        """Return each value's bin index, ``#{edges < x}`` (NaN: see :meth:`count`).

        With ``scratch`` the result lives in its buffers: use it before the next call.
        """
        if self._lut is None or len(x) < _SMALL:
            return np.searchsorted(self.edges, x, side="left")
        n = len(x)
        work = scratch or Scratch()
        buf = work.get("f", n, np.float64)
        np.subtract(x, self._lo, out=buf)
        np.multiply(buf, self._scale, out=buf)
        np.fmax(buf, -1.0, out=buf)  # fmax maps NaN to -1, i.e. cell 0 and bin 0
        np.fmin(buf, float(_GRID), out=buf)
        buf += 1.0
        cells = work.get("cells", n, np.intp)
        np.copyto(cells, buf, casting="unsafe")
        bins = work.get("bins", n, np.intp)
        np.take(self._lut, cells, out=bins)
        flags = work.get("flags", n, np.bool_)
        np.less(bins, 0, out=flags)
        amb = np.flatnonzero(flags)
        if len(amb):
            bins[amb] = np.searchsorted(self.edges, x[amb], side="left")
        for _ in range(self.rounds):
            np.take(self._padded, bins, out=buf)
            np.greater(x, buf, out=flags)
            bins += flags
        return bins


@dataclass
class NumericChunkStats:
    """Moments of the finite values of a chunk plus missing/infinite counts."""

    n_missing: int
    n_posinf: int
    n_neginf: int
    n_finite: int
    mean: float
    m2: float
    minimum: float
    maximum: float


def numeric_chunk_stats(x: np.ndarray, scratch: Scratch | None = None) -> NumericChunkStats:
    """Return the moments of the finite values of ``x`` (one or two passes)."""
    with np.errstate(invalid="ignore", over="ignore"):
        total = float(np.sum(x)) if len(x) else 0.0
    if np.isfinite(total):
        n = len(x)
        if n == 0:
            return NumericChunkStats(0, 0, 0, 0, 0.0, 0.0, float("inf"), float("-inf"))
        mean = total / n
        dev = (scratch or Scratch()).get("f", n, np.float64)
        np.subtract(x, mean, out=dev)
        return NumericChunkStats(0, 0, 0, n, mean, _sum_of_squares(dev), float(x.min()), float(x.max()))
    nan = np.isnan(x)
    posinf = np.isposinf(x)
    neginf = np.isneginf(x)
    finite = x[~(nan | posinf | neginf)]
    n = len(finite)
    if n == 0:
        return NumericChunkStats(
            int(nan.sum()), int(posinf.sum()), int(neginf.sum()), 0, 0.0, 0.0, float("inf"), float("-inf")
        )
    scale = float(np.max(np.abs(finite)))
    scaled = finite / scale if scale > 1e150 else finite
    mean = float(np.mean(scaled))
    dev = scaled - mean
    m2 = _sum_of_squares(dev)
    if scaled is not finite:
        mean *= scale
        m2 = m2 * scale * scale
    return NumericChunkStats(
        int(nan.sum()),
        int(posinf.sum()),
        int(neginf.sum()),
        n,
        mean,
        m2,
        float(finite.min()),
        float(finite.max()),
    )


def _sum_of_squares(dev: np.ndarray) -> float:
    # not np.dot: BLAS threads spin on a busy machine; pairwise summation is also more accurate
    np.multiply(dev, dev, out=dev)
    return float(np.add.reduce(dev))


_MISSING_STRINGS = frozenset({"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"})


class CategoryEncoder:
    """Maps values to the slots ``[top values..., other, unseen]`` of a categorical profile.

    Parameters
    ----------
    values:
        The reference's top values (slot ``i`` for ``values[i]``).
    other_values:
        Reference values outside the top (they count in the ``other`` slot).
    """

    def __init__(self, values: list[str], other_values: list[str]) -> None:
        self.slot = {v: i for i, v in enumerate(values)}
        self.other = len(values)
        self.unseen = len(values) + 1
        for v in other_values:
            self.slot.setdefault(v, self.other)
        self.nslots = len(values) + 2

    def slots_for(self, categories: list[Any]) -> np.ndarray:
        """Return the slot of each category in a dictionary (-1 for missing)."""
        out = np.empty(len(categories), dtype=np.intp)
        for i, cat in enumerate(categories):
            if cat is None or (isinstance(cat, float) and cat != cat):
                out[i] = -1
                continue
            key = cat if isinstance(cat, str) else _as_text(cat)
            out[i] = -1 if key in _MISSING_STRINGS else self.slot.get(key, self.unseen)
        return out

    def count_codes(self, codes: np.ndarray, categories: list[Any]) -> tuple[np.ndarray, int, dict[str, int]]:
        """Count dictionary-encoded values: ``codes`` index ``categories`` (-1 = missing).

        Returns ``(slot counts, missing count, unseen value → count)``.
        """
        lut = np.append(self.slots_for(categories), -1)  # code -1 → last entry → missing
        slots = lut[codes]
        counts = np.bincount(slots + 1, minlength=self.nslots + 1)
        unseen: dict[str, int] = {}
        if counts[self.unseen + 1]:
            per_code = np.bincount(codes[codes >= 0], minlength=len(categories))
            for code in np.flatnonzero(lut[:-1] == self.unseen):
                if per_code[code]:
                    unseen[_as_text(categories[code])] = int(per_code[code])
        return counts[1:].astype(np.int64), int(counts[0]), unseen


def _as_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _log_fallback(exc: Exception) -> None:
    import logging

    logging.getLogger("modelpilot.drift").debug("dictionary encoding falls back to Python: %s", exc)


def dictionary_encode(values: Any) -> tuple[np.ndarray, list[Any]]:
    """Return ``(codes, categories)`` of an array of hashable values (None/NaN → -1)."""
    arr = np.asarray(values, dtype=object)
    try:
        import pyarrow as pa

        encoded = pa.array(arr, from_pandas=True).dictionary_encode()
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        codes = (
            np.where(np.isnan(codes), -1, codes).astype(np.intp) if codes.dtype.kind == "f" else codes.astype(np.intp)
        )
        return codes, encoded.dictionary.to_pylist()
    except ImportError:
        pass
    except (TypeError, ValueError, OverflowError, RuntimeError) as exc:  # mixed types: fall back to Python
        _log_fallback(exc)
    mapping: dict[Any, int] = {}
    codes = np.empty(len(arr), dtype=np.intp)
    for i, v in enumerate(arr):
        if v is None or (isinstance(v, float) and v != v):
            codes[i] = -1
        else:
            codes[i] = mapping.setdefault(v, len(mapping))
    return codes, list(mapping)
