"""Column chunks: what readers yield and what the profile builders consume.

A :class:`Chunk` holds up to a few tens of thousands of rows as columns:
float64 arrays (NaN = missing), :class:`Categorical` (dictionary-encoded:
integer codes into a small list of categories, -1 = missing), or object arrays
of raw values that are converted per the feature's type (unparseable numbers
count as type errors).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelpilot.drift._kernels import dictionary_encode_counted

__all__ = ["Categorical", "Chunk", "chunk_frame", "frame_rows", "to_categorical", "to_categorical_counted", "to_float"]

DEFAULT_CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class Categorical:
    """Dictionary-encoded values: ``categories[codes[i]]``, code -1 = missing."""

    codes: np.ndarray
    categories: list[Any]

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key: slice) -> Categorical:
        return Categorical(self.codes[key], self.categories)


@dataclass
class Chunk:
    """Rows of a data set as columns, with the read problems met on the way."""

    columns: dict[str, Any]
    rows: int
    corrupt_rows: int = 0
    type_errors: dict[str, int] = field(default_factory=dict)


def to_float(values: Any) -> tuple[np.ndarray, int]:
    """Return ``(float64 array, type errors)``.

    None, '' and NA spellings become NaN; other text that is no number becomes NaN and a type error.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False), 0
    if isinstance(values, Categorical):
        cats, _ = to_float(np.asarray(values.categories, dtype=object))
        bad = np.asarray(
            [bool(np.isnan(f)) and not _is_na(c) for f, c in zip(cats, values.categories, strict=True)] + [False],
            dtype=bool,
        )
        table = np.append(cats, np.nan)
        errors = int(np.count_nonzero(bad[values.codes])) if bad.any() else 0
        return table[values.codes], errors
    arr = np.asarray(values, dtype=object)
    try:
        return arr.astype(np.float64), 0
    except (TypeError, ValueError):
        pass
    out = np.empty(len(arr), dtype=np.float64)
    errors = 0
    for i, v in enumerate(arr):
        if _is_na(v):
            out[i] = np.nan
            continue
        if isinstance(v, bool):
            out[i] = float(v)
            continue
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            out[i] = np.nan
            errors += 1
    return out, errors


_NA = frozenset({"", "nan", "NaN", "NA", "N/A", "null", "NULL", "None"})


def _is_na(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return isinstance(value, str) and value.strip() in _NA


def to_categorical(values: Any) -> Categorical:
    """Return ``values`` dictionary-encoded (objects and lists are missing values)."""
    return to_categorical_counted(values)[0]


def to_categorical_counted(values: Any) -> tuple[Categorical, int]:
    """Return ``values`` dictionary-encoded and the number of values that are no value (objects, lists)."""
    if isinstance(values, Categorical):
        return values, 0
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        boxed = values.astype(object)
        boxed[np.isnan(values)] = None
        codes, cats, bad = dictionary_encode_counted(boxed)
        return Categorical(codes, cats), bad
    codes, cats, bad = dictionary_encode_counted(values)
    return Categorical(codes, cats), bad


def chunk_frame(frame: Mapping[str, Any], rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Split an in-memory frame (column name → array or :class:`Categorical`) into chunks."""
    total = frame_rows(frame)
    for start in range(0, total, rows):
        stop = min(total, start + rows)
        yield Chunk({k: v[start:stop] for k, v in frame.items()}, stop - start)


def frame_rows(frame: Mapping[str, Any]) -> int:
    """Return the rows of an in-memory frame; ``DataError`` when its columns differ in length."""
    lengths = {len(v) for v in frame.values()}
    if len(lengths) > 1:
        from modelpilot.exceptions import DataError

        raise DataError(f"columns have different lengths: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def iter_chunks(source: Mapping[str, Any] | Iterable[Chunk], rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Return chunks of an in-memory frame, or pass chunks through."""
    if isinstance(source, Mapping):
        return chunk_frame(source, rows)
    return iter(source)
