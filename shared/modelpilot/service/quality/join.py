"""The streaming join of predictions with their labels: an exact hash-partitioned (Grace) join on local disk.

Both sides are read once, chunk by chunk. Every row goes to one of ``partitions`` spill files by a 64-bit
FNV-1a hash of its inference id (vectorised over the id bytes), so all rows of one id, prediction or label,
land in the same partition. The partitions are then joined one at a time in memory (sort + binary search):
memory holds one input chunk or one partition, never the window. A partition larger than ``max_rows`` (256 Ki rows
by default: a skewed or very large window) is split again with a different hash seed, up to :data:`MAX_DEPTH` levels.

Why hash partitioning rather than a merge on sorted ids: inference ids are arbitrary strings (UUIDs) with no
order related to time, so sorted runs would need an external sort of both sides (several passes, and a
k-way merge); hashing needs one pass per side, is exact (every id compared byte for byte, no sketch), and
each partition is independent. Within a partition, a prediction id seen twice keeps its first row (a
retried capture) and a label id seen twice keeps its last label (a correction); both are counted, and so are
labels whose id no prediction of the window has.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift.frames import Categorical

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["MAX_DEPTH", "HashJoin", "JoinStats", "Spill", "id_bytes", "id_hash"]

MAX_DEPTH = 3
_FNV_PRIME = np.uint64(0x100000001B3)
_FNV_OFFSET = 0xCBF29CE484222325


def id_bytes(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(ids as a bytes array, present mask)``; integral numbers become their integer text."""
    if isinstance(values, Categorical):
        table, present_table = id_bytes(np.asarray(values.categories, dtype=object))
        codes = values.codes
        ids = table[np.clip(codes, 0, None)] if len(table) else np.zeros(len(codes), dtype="S1")
        present = (codes >= 0) & (present_table[np.clip(codes, 0, None)] if len(table) else False)
        return np.asarray(ids), np.asarray(present, dtype=bool)
    arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if arr.dtype.kind in "iu":
        return arr.astype("S"), np.ones(len(arr), dtype=bool)
    if arr.dtype.kind == "f":
        present = np.isfinite(arr)
        integral = present & (arr == np.floor(np.where(present, arr, 0)))
        out = np.where(integral, np.where(present, arr, 0).astype(np.int64).astype("S"), arr.astype("S"))
        return out, present
    if arr.dtype.kind == "S":
        return arr, np.char.str_len(arr) > 0
    values = arr.tolist()
    if all(type(v) is str for v in values):  # the common case (text ids, Arrow dictionaries): vectorised
        unicode = np.char.strip(np.asarray(values, dtype=str)) if values else np.zeros(0, dtype="U1")
        try:
            encoded = unicode.astype("S")
        except UnicodeEncodeError:
            encoded = np.char.encode(unicode, "utf-8")
        return encoded, np.char.str_len(unicode) > 0
    texts = []
    present_list = []
    for v in values:
        if v is None or (isinstance(v, float) and (v != v)):
            texts.append("")
            present_list.append(False)
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        text = str(v).strip()
        texts.append(text)
        present_list.append(bool(text))
    unicode = np.asarray(texts, dtype=str) if texts else np.zeros(0, dtype="U1")
    try:
        encoded = unicode.astype("S")
    except UnicodeEncodeError:
        encoded = np.char.encode(unicode, "utf-8")
    return encoded, np.asarray(present_list, dtype=bool)


def id_hash(ids: np.ndarray, seed: int = 0) -> np.ndarray:
    """64-bit FNV-1a of each id's bytes (padding ignored), vectorised over the byte columns."""
    n = len(ids)
    h = np.full(n, np.uint64((_FNV_OFFSET + seed * 0x9E3779B97F4A7C15) % (1 << 64)), dtype=np.uint64)
    if not n:
        return h
    width = ids.dtype.itemsize
    raw = np.ascontiguousarray(ids).view(np.uint8).reshape(n, width)
    with np.errstate(over="ignore"):
        for col in range(width):
            b = raw[:, col]
            live = b != 0
            if not live.any():
                break
            mixed = (h ^ b.astype(np.uint64)) * _FNV_PRIME
            h = np.where(live, mixed, h)
    return h


class Spill:
    """Column arrays appended to numbered part files in a folder and read back part by part.

    Each append writes a small header (row count, then each column's item size) and the columns' raw bytes:
    no per-array metadata to parse, so thousands of small appends stay cheap.
    """

    def __init__(self, folder: str, parts: int, name: str) -> None:
        self.folder, self.parts, self.name = folder, parts, name
        self.rows = np.zeros(parts, dtype=np.int64)
        self._files: dict[int, IO[bytes]] = {}
        self._columns: list[str] | None = None
        self._dtypes: dict[str, np.dtype[Any]] = {}

    def _path(self, part: int) -> str:
        return os.path.join(self.folder, f"{self.name}-{part}.bin")

    def append(self, part: int, columns: dict[str, np.ndarray]) -> None:
        """Append rows (all columns of one length) to ``part``."""
        if self._columns is None:
            self._columns = list(columns)
            self._dtypes = {k: v.dtype for k, v in columns.items()}
        handle = self._files.get(part)
        if handle is None:
            handle = self._files[part] = open(self._path(part), "ab", buffering=1 << 16)  # noqa: SIM115 - closed in close()
        arrays = []
        for name in self._columns:
            values = columns[name]
            dtype = self._dtypes[name]
            if dtype.kind != "S" and values.dtype != dtype:
                values = values.astype(dtype)
            arrays.append(np.ascontiguousarray(values))
        n = len(arrays[0]) if arrays else 0
        handle.write(struct.pack(f"<q{len(arrays)}q", n, *(a.dtype.itemsize for a in arrays)))
        for a in arrays:
            handle.write(a.tobytes())
        self.rows[part] += n

    def scatter(self, parts: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        """Append each row to the part ``parts[i]`` names (one write per part present)."""
        if not len(parts):
            return
        order = np.argsort(parts, kind="stable")
        sorted_parts = parts[order]
        starts = np.flatnonzero(np.concatenate(([True], sorted_parts[1:] != sorted_parts[:-1])))
        ends = np.append(starts[1:], len(order))
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            take = order[s:e]
            self.append(int(sorted_parts[s]), {k: v[take] for k, v in columns.items()})

    def read(self, part: int) -> Iterator[dict[str, np.ndarray]]:
        """Yield the chunks appended to ``part``, in order."""
        handle = self._files.pop(part, None)
        if handle is not None:
            handle.close()
        if not self.rows[part] or self._columns is None:
            return
        names = self._columns
        head = struct.Struct(f"<q{len(names)}q")
        with open(self._path(part), "rb") as stream:
            while True:
                raw = stream.read(head.size)
                if len(raw) < head.size:
                    return
                n, *sizes = head.unpack(raw)
                chunk = {}
                for name, size in zip(names, sizes, strict=True):
                    base = self._dtypes[name]
                    dtype = np.dtype(f"S{size}") if base.kind == "S" else base
                    chunk[name] = (
                        np.frombuffer(stream.read(n * size), dtype=dtype, count=n) if size else np.zeros(n, dtype="S1")
                    )
                yield chunk

    def drop(self, part: int) -> None:
        """Delete a part's file once it has been read."""
        handle = self._files.pop(part, None)
        if handle is not None:
            handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._path(part))

    def close(self) -> None:
        """Close every open part file."""
        for handle in self._files.values():
            handle.close()
        self._files.clear()


@dataclass
class JoinStats:
    """What the join met."""

    predictions: int = 0
    labels: int = 0
    matched: int = 0
    unknown_labels: int = 0
    duplicate_predictions: int = 0
    duplicate_labels: int = 0
    partitions: int = 0
    largest_partition: int = 0
    repartitioned: int = 0
    depth: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "method": "hash-partitioned",
            "predictions": self.predictions,
            "labels": self.labels,
            "matched": self.matched,
            "unknown_labels": self.unknown_labels,
            "duplicate_predictions": self.duplicate_predictions,
            "duplicate_labels": self.duplicate_labels,
            "partitions": self.partitions,
            "largest_partition": self.largest_partition,
            "repartitioned": self.repartitioned,
        }


def _concat(chunks: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    if not chunks:
        return {}
    return {name: np.concatenate([c[name] for c in chunks]) for name in names}


class HashJoin:
    """Predictions (column ``id`` plus any columns) joined with labels (``id``, ``y``) by inference id.

    Add both sides in any order, then iterate :meth:`results`: each item is one partition's predictions (ids
    unique) with ``y``, the label of each row or NaN.
    """

    def __init__(self, folder: str | None = None, *, partitions: int = 64, max_rows: int = 1 << 18) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="modelpilot-join-", dir=folder)
        self.folder = self._tmp.name
        self.partitions, self.max_rows = partitions, max_rows
        self.stats = JoinStats(partitions=partitions)
        self._pred = Spill(self.folder, partitions, "p")
        self._labels = Spill(self.folder, partitions, "l")
        self._pred_columns: list[str] = []

    def __enter__(self) -> HashJoin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the spill files."""
        self._pred.close()
        self._labels.close()
        self._tmp.cleanup()

    def add_predictions(self, columns: dict[str, np.ndarray]) -> None:
        """Add prediction rows; ``columns["id"]`` is a bytes array of present ids."""
        ids = columns["id"]
        self._pred_columns = list(columns)
        self.stats.predictions += len(ids)
        self._pred.scatter((id_hash(ids) % np.uint64(self.partitions)).astype(np.int64), columns)

    def add_labels(self, ids: np.ndarray, y: np.ndarray) -> None:
        """Add labels (bytes ids, float values: class codes or regression targets)."""
        self.stats.labels += len(ids)
        self._labels.scatter((id_hash(ids) % np.uint64(self.partitions)).astype(np.int64), {"id": ids, "y": y})

    def results(self) -> Iterator[dict[str, np.ndarray]]:
        """Yield every partition's joined predictions (with ``y``), partition after partition."""
        yield from self._join_spills(self._pred, self._labels, depth=0)

    def _join_spills(self, pred: Spill, labels: Spill, *, depth: int) -> Iterator[dict[str, np.ndarray]]:
        for part in range(pred.parts):
            rows = int(pred.rows[part] + labels.rows[part])
            if not rows:
                continue
            if rows > self.max_rows and depth < MAX_DEPTH:
                self.stats.repartitioned += 1
                self.stats.depth = max(self.stats.depth, depth + 1)
                sub_pred = Spill(self.folder, self.partitions, f"{pred.name}.{part}")
                sub_labels = Spill(self.folder, self.partitions, f"{labels.name}.{part}")
                for chunk in pred.read(part):
                    sub_pred.scatter(self._part(chunk["id"], depth + 1), chunk)
                for chunk in labels.read(part):
                    sub_labels.scatter(self._part(chunk["id"], depth + 1), chunk)
                pred.drop(part)
                labels.drop(part)
                yield from self._join_spills(sub_pred, sub_labels, depth=depth + 1)
                continue
            self.stats.largest_partition = max(self.stats.largest_partition, rows)
            p = _concat(list(pred.read(part)), self._pred_columns)
            lab = _concat(list(labels.read(part)), ["id", "y"])
            pred.drop(part)
            labels.drop(part)
            joined = self._join(p, lab)
            if joined:
                yield joined

    def _part(self, ids: np.ndarray, seed: int) -> np.ndarray:
        return (id_hash(ids, seed) % np.uint64(self.partitions)).astype(np.int64)

    def _join(self, pred: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        label_ids = labels.get("id", np.zeros(0, dtype="S1"))
        label_y = labels.get("y", np.zeros(0))
        if len(label_ids):
            order = np.argsort(label_ids, kind="stable")
            sorted_ids = label_ids[order]
            last = np.concatenate((sorted_ids[1:] != sorted_ids[:-1], [True]))
            self.stats.duplicate_labels += int(len(last) - np.count_nonzero(last))
            unique_ids, unique_y = sorted_ids[last], label_y[order][last]
        else:
            unique_ids, unique_y = label_ids, label_y
        if not pred:
            self.stats.unknown_labels += len(unique_ids)
            return {}
        ids = pred["id"]
        order = np.argsort(ids, kind="stable")
        sorted_pred = ids[order]
        first = np.concatenate(([True], sorted_pred[1:] != sorted_pred[:-1]))
        self.stats.duplicate_predictions += int(len(first) - np.count_nonzero(first))
        keep = order[first]
        out = {name: values[keep] for name, values in pred.items()}
        y = np.full(len(keep), np.nan)
        if len(unique_ids):
            pos = np.searchsorted(unique_ids, out["id"])
            inside = pos < len(unique_ids)
            hit = np.zeros(len(keep), dtype=bool)
            hit[inside] = unique_ids[pos[inside]] == out["id"][inside]
            y[hit] = unique_y[pos[hit]]
            matched = int(np.count_nonzero(hit))
            self.stats.matched += matched
            self.stats.unknown_labels += len(unique_ids) - matched
        out["y"] = y
        return out
