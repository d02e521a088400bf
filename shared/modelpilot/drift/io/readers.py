"""Readers that stream capture data through the ``ArtifactStore`` port, in chunks.

Formats, chosen by file name (``.gz`` is decompressed on the fly):

* ``.csv`` — a header line, then rows; rows with the wrong number of fields are
  corrupt. Parsed by pyarrow's streaming CSV reader when pyarrow is installed,
  else by the standard library.
* ``.jsonl`` / ``.ndjson`` / ``.json`` — one JSON object per line (name → value).
  A line that is no JSON object is corrupt. Lines holding SageMaker data-capture
  records (``captureData.endpointInput``) are unpacked: CSV or JSON payloads,
  base64-decoded when ``encoding`` is ``BASE64``; CSV fields map by position to
  the model's features.
* ``.parquet`` — when pyarrow is installed (the ``parquet`` extra); otherwise
  each such file fails with a clear message and counts as a corrupt file.

A file that cannot be read at all counts as a corrupt file; the batch goes on.
A ``.gz`` file is checked whole (end of stream, CRC and length of every member)
before any of its rows is used: a truncated or damaged one is a corrupt file
and none of its rows count. A UTF-8 byte-order mark at the start of a file is
dropped. A JSON value that is an object or a list where a feature's value is
expected is a type error of that feature (the row is kept, the value is not).
:class:`ReadStats` holds what was read and what was skipped, with examples.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import tempfile
import zlib
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift.frames import DEFAULT_CHUNK_ROWS, Chunk
from modelpilot.drift.io._capture import capture_rows
from modelpilot.drift.io.stats import ReadStats
from modelpilot.exceptions import ArtifactMissing, DataError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from modelpilot.ports import ArtifactStore, ObjectInfo

__all__ = ["FORMATS", "ReadStats", "data_files", "detect_format", "read_capture", "read_files"]

FORMATS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(uri: str) -> str | None:
    """Return the format of a file name, or None when it is not a data file."""
    name = uri.rsplit("/", 1)[-1].lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix, fmt in FORMATS.items():
        if name.endswith(suffix):
            return fmt
    return None


def read_capture(
    store: ArtifactStore,
    uri: str,
    features: Sequence[str],
    stats: ReadStats,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    use_arrow: bool | None = None,
) -> Iterator[Chunk]:
    """Yield chunks of every data file under ``uri`` (a file or a prefix), in URI order.

    Parameters
    ----------
    features:
        The model's feature names, in order (to map positional CSV payloads).
    stats:
        Filled in while reading.
    use_arrow:
        Force (True) or forbid (False) pyarrow for CSV; None uses it when installed.
    """
    objects = store.list(uri)
    if not objects:
        raise ArtifactMissing(f"no capture data under {uri}", uri=uri)
    for obj in objects:
        name = obj.uri.rsplit("/", 1)[-1]
        if name.startswith(".") or name.startswith("_"):
            continue
        fmt = detect_format(obj.uri)
        if fmt is None:
            stats.skipped_files.append(obj.uri)
            continue
        stats.files += 1
        try:
            yield from _read_file(store, obj.uri, fmt, features, stats, chunk_rows, use_arrow)
        except (DataError, ValueError, OSError, zlib.error, EOFError) as exc:
            stats.corrupt_file(obj.uri, str(exc) or type(exc).__name__)


def data_files(objects: Sequence[ObjectInfo], stats: ReadStats | None = None) -> list[ObjectInfo]:
    """Return the data files among ``objects`` as :func:`read_capture` picks them (hidden and unknown skipped)."""
    picked = []
    for obj in objects:
        name = obj.uri.rsplit("/", 1)[-1]
        if name.startswith(".") or name.startswith("_"):
            continue
        if detect_format(obj.uri) is None:
            if stats is not None:
                stats.skipped_files.append(obj.uri)
            continue
        picked.append(obj)
    return picked


def read_files(
    store: ArtifactStore,
    uris: Sequence[str],
    features: Sequence[str],
    stats: ReadStats,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    use_arrow: bool | None = None,
) -> Iterator[Chunk]:
    """Yield chunks of the named data files, in the given order, as :func:`read_capture` reads each one.

    A file that cannot be read, or that vanished since it was listed, counts as a
    corrupt file.
    """
    for uri in uris:
        fmt = detect_format(uri)
        if fmt is None:
            raise DataError(f"{uri} is not a data file (CSV, JSON Lines or Parquet)", uri=uri)
        stats.files += 1
        try:
            yield from _read_file(store, uri, fmt, features, stats, chunk_rows, use_arrow)
        except ArtifactMissing:
            stats.corrupt_file(uri, "vanished since it was listed")
        except (DataError, ValueError, OSError, zlib.error, EOFError) as exc:
            stats.corrupt_file(uri, str(exc) or type(exc).__name__)


def _read_file(
    store: ArtifactStore,
    uri: str,
    fmt: str,
    features: Sequence[str],
    stats: ReadStats,
    chunk_rows: int,
    use_arrow: bool | None,
) -> Iterator[Chunk]:
    if fmt == "parquet":
        from modelpilot.drift.io._arrow import read_parquet

        local = None if uri.lower().endswith(".gz") else store.local_file(uri)
        yield from read_parquet(open_data(store, uri, text=False), uri, stats, chunk_rows, local=local)
    elif fmt == "csv":
        if use_arrow is not False and _has_arrow():
            from modelpilot.drift.io._arrow import read_csv_arrow

            def rest(skip: int, counted: int) -> Iterator[Chunk]:
                return _read_csv(open_data(store, uri), uri, stats, chunk_rows, skip_rows=skip, counted=counted)

            local = None if uri.lower().endswith(".gz") else store.local_file(uri)
            yield from read_csv_arrow(open_data(store, uri), uri, stats, chunk_rows, rest, local=local)
        else:
            yield from _read_csv(open_data(store, uri), uri, stats, chunk_rows)
    else:
        yield from _read_jsonl(open_data(store, uri), uri, features, stats, chunk_rows)


def open_data(store: ArtifactStore, uri: str, *, text: bool = True) -> Iterator[bytes]:
    """Return the bytes of ``uri``: a ``.gz`` file checked whole first, a text file without its BOM."""
    raw = _gunzip_checked(store.open_chunks(uri)) if uri.lower().endswith(".gz") else store.open_chunks(uri)
    return _without_bom(raw) if text else raw


def _without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(codecs.BOM_UTF8):
            break
    yield head.removeprefix(codecs.BOM_UTF8)
    yield from chunks


def _gunzip_checked(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Spool the compressed file, check that it inflates completely, then inflate it again as it is read.

    Checking first means a truncated or damaged file yields no row at all instead of its first part.
    """
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the generator below
    try:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        for _ in _decompressed(iter(lambda: spool.read(1 << 20), b"")):
            pass
        spool.seek(0)
        yield from _decompressed(iter(lambda: spool.read(1 << 20), b""))
    finally:
        spool.close()


def _has_arrow() -> bool:
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def _decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Inflate a gzip stream of one or more members; raise ``DataError`` when it ends early."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    started = False
    for chunk in chunks:
        while chunk:
            started = True
            out = inflater.decompress(chunk)
            if out:
                yield out
            if not inflater.eof:
                break
            chunk = inflater.unused_data  # the next member of a concatenated gzip file
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            started = False
    tail = inflater.flush()
    if tail:
        yield tail
    if started and not inflater.eof:
        raise DataError("truncated gzip stream (the file ends inside compressed data)")


def iter_lines(chunks: Iterator[bytes]) -> Iterator[str]:
    """Split a byte stream into text lines (UTF-8, invalid bytes replaced)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    carry = ""
    for chunk in chunks:
        text = carry + decoder.decode(chunk)
        lines = text.split("\n")
        carry = lines.pop()
        for line in lines:
            yield line.rstrip("\r")
    carry += decoder.decode(b"", final=True)
    if carry:
        yield carry.rstrip("\r")


class _Columns:
    """Row-wise records collected into columns, flushed as chunks."""

    def __init__(self, chunk_rows: int, *, scalars_only: bool = False) -> None:
        self.chunk_rows = chunk_rows
        self.scalars_only = scalars_only
        self.columns: dict[str, list[Any]] = {}
        self.rows = 0
        self.corrupt = 0
        self.type_errors: dict[str, int] = {}

    def add(self, record: dict[str, Any]) -> list[str]:
        """Add one record; return the keys whose value was an object or a list (kept as missing, counted)."""
        nested = [k for k, v in record.items() if isinstance(v, dict | list)] if self.scalars_only else []
        for key in record:
            if key not in self.columns:
                self.columns[key] = [None] * self.rows
        for key in nested:
            self.type_errors[key] = self.type_errors.get(key, 0) + 1
        for key, values in self.columns.items():
            values.append(None if key in nested else record.get(key))
        self.rows += 1
        return nested

    def full(self) -> bool:
        return self.rows >= self.chunk_rows

    def flush(self) -> Chunk | None:
        if not self.rows and not self.corrupt:
            return None
        chunk = Chunk({k: _array(v) for k, v in self.columns.items()}, self.rows, self.corrupt, self.type_errors)
        self.columns, self.rows, self.corrupt, self.type_errors = {}, 0, 0, {}
        return chunk


def _array(values: list[Any]) -> np.ndarray:
    arr = np.empty(len(values), dtype=object)
    arr[:] = values
    return arr


def _read_csv(
    raw: Iterator[bytes],
    uri: str,
    stats: ReadStats,
    chunk_rows: int,
    *,
    skip_rows: int = 0,
    counted: int = 0,
) -> Iterator[Chunk]:
    """Parse CSV with the standard library.

    The first ``skip_rows`` well-formed rows were handed on already (they are passed over), and
    so were ``counted`` of the corrupt rows: every corrupt row of the file is counted in
    ``stats``, and the chunks carry those beyond ``counted``.
    """
    lines = iter_lines(raw)
    header = next(csv.reader([next(lines, "")]), [])
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{uri} has no header line")
    names = [h.strip() for h in header]
    out = _Columns(chunk_rows)
    owed = counted  # corrupt rows the chunks already carried

    def flush() -> Chunk | None:
        nonlocal owed
        paid = min(owed, out.corrupt)
        out.corrupt -= paid
        owed -= paid
        return out.flush()

    for number, row in enumerate(csv.reader(lines), start=2):
        if not row:
            continue
        if len(row) != len(names):
            out.corrupt += 1
            stats.corrupt(f"{uri}:{number}", f"{len(row)} fields, the header has {len(names)}")
            continue
        if skip_rows:
            skip_rows -= 1
            continue
        out.add(dict(zip(names, row, strict=True)))
        stats.rows += 1
        if out.full():
            yield flush()  # type: ignore[misc]
    last = flush()
    if last is not None:
        yield last
    stats.corrupt_rows += owed  # corrupt to pyarrow, not to the standard library: the chunks counted them


def _read_jsonl(
    raw: Iterator[bytes], uri: str, features: Sequence[str], stats: ReadStats, chunk_rows: int
) -> Iterator[Chunk]:
    out = _Columns(chunk_rows, scalars_only=True)
    for number, line in enumerate(iter_lines(raw), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            out.corrupt += 1
            stats.corrupt(f"{uri}:{number}", f"not JSON ({exc.msg})")
            continue
        if isinstance(record, dict) and "captureData" in record:
            rows, problem = capture_rows(record, features)
        elif isinstance(record, dict):
            rows, problem = [record], None
        else:
            rows, problem = [], "not a JSON object"
        if problem:
            out.corrupt += 1
            stats.corrupt(f"{uri}:{number}", problem)
            continue
        for row in rows:
            for key in out.add(row):
                stats.bad_value(f"{uri}:{number}", f"{key!r} holds a JSON object or list, not a value")
            stats.rows += 1
        if out.full():
            yield out.flush()  # type: ignore[misc]
    last = out.flush()
    if last is not None:
        yield last


def parse_csv_payload(text: str) -> list[list[str]]:
    """Parse a headerless CSV payload into rows of fields."""
    return [row for row in csv.reader(io.StringIO(text)) if row]
