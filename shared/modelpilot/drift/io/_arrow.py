"""pyarrow-backed readers: streaming CSV (fast path) and Parquet (the ``parquet`` extra)."""

from __future__ import annotations

import io
import tempfile
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift._lanes import run_lanes
from modelpilot.drift.frames import Categorical, Chunk
from modelpilot.exceptions import DataError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from modelpilot.drift.io.stats import ReadStats

__all__ = ["read_csv_arrow", "read_parquet"]


def _block_bytes(chunk_rows: int, sample: bytes = b"") -> int:
    """CSV parse block size: ``chunk_rows`` rows as wide as the ``sample``'s lines, 64 KiB to 1 MiB.

    pyarrow parses blocks of about 1 MiB fastest (16 MiB blocks cost twice the CPU); the reader
    gathers blocks into chunks of about ``chunk_rows`` rows, since much smaller chunks make the
    per-chunk work (a few dozen numpy calls per column) cost more than the binning itself.
    """
    lines = sample.count(b"\n")
    width = len(sample[: sample.rfind(b"\n") + 1]) / lines if lines else 16
    return int(min(1 << 20, max(1 << 16, chunk_rows * width * 1.1)))


NULLS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


class _StreamFile(io.RawIOBase):
    """A read-only file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def read_csv_arrow(
    raw: Iterator[bytes],
    uri: str,
    stats: ReadStats,
    chunk_rows: int,
    rest: Callable[[int, int], Iterator[Chunk]] | None = None,
) -> Iterator[Chunk]:
    """Stream a CSV file with ``pyarrow.csv.open_csv`` on every core; columns read as text, then converted.

    The header is parsed here and given to pyarrow as the column names, so the names and their
    types always match. pyarrow does not check the text's UTF-8 (reading the columns as binary
    instead costs twice the parse time), so text that is no UTF-8 fails no block: it becomes
    replacement characters, as in the standard-library reader; a stray word in a numeric column
    is a type error, not a failed file. Blocks are parsed in parallel, so a
    corrupt row's line number is unknown: it is counted (by pyarrow's invalid-row handler, and
    the count is handed on with the chunks) and reported by file. When pyarrow fails part-way
    through (for example on a row longer than a block), ``rest(rows, counted)`` (the
    standard-library reader) reads the file again, passes over the ``rows`` well-formed rows
    already handed on and recounts the corrupt ones, ``counted`` of which the chunks carried
    already: no row is dropped unseen or counted twice.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad: list[int] = [0, 0]  # not yet handed on, seen in all
    lock = threading.Lock()  # the handler runs on pyarrow's threads

    def invalid(row: Any) -> str:
        with lock:
            bad[0] += 1
            bad[1] += 1
        where = f"{uri}:{row.number}" if row.number is not None else uri
        stats.corrupt(where, f"{row.actual_columns} fields, the header has {row.expected_columns}", rows=1)
        return "skip"

    head, sample, raw = _header(raw)
    types = {name: pa.string() for name in head}
    stream = io.BufferedReader(_StreamFile(raw), buffer_size=1 << 20)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                block_size=_block_bytes(chunk_rows, sample), use_threads=True, column_names=head, skip_rows=1
            ),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
            # UTF-8 is checked (and undecodable bytes replaced) only in the few distinct texts, in _column
            convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=True, null_values=NULLS, check_utf8=False
            ),
        )
    except (pa.ArrowInvalid, StopIteration) as exc:
        raise DataError(f"cannot read CSV {uri}: {exc}") from None
    rows = handed = 0  # well-formed rows and corrupt rows already handed on
    text_columns: set[str] = set()
    pending: list[Any] = []  # batches (parse blocks) gathered into one chunk of about chunk_rows rows

    def chunk() -> Chunk:
        nonlocal rows, handed
        with lock:
            before, bad[0] = bad[0], 0
        count = sum(b.num_rows for b in pending)
        stats.rows += count
        rows += count
        handed += before
        names = pending[0].schema.names
        parts = [[b.column(i) for b in pending] for i in range(len(names))]
        pending.clear()
        columns = run_lanes(
            lambda i: _column(
                parts[i][0] if len(parts[i]) == 1 else pa.concat_arrays(parts[i]),
                names[i],
                text_columns,
                unchecked=True,
            ),
            range(len(names)),
        )
        return Chunk(dict(zip(names, columns, strict=True)), count, before)

    try:
        for batch in reader:
            pending.append(batch)
            if sum(b.num_rows for b in pending) >= chunk_rows:
                yield chunk()
        if pending:
            yield chunk()
    except pa.ArrowInvalid as exc:
        if rest is None:
            raise DataError(f"cannot read CSV {uri}: {exc}") from None
        stats.corrupt_rows -= bad[1]  # the standard-library reader counts the corrupt rows of the whole file
        yield from rest(rows, handed)
        return
    if bad[0]:  # rows of the last blocks, found after their batch was handed on
        yield Chunk({}, 0, bad[0])


def _header(raw: Iterator[bytes]) -> tuple[list[str], bytes, Iterator[bytes]]:
    """Return the CSV header's column names, the data bytes read with it, and the byte stream, header included."""
    import csv
    import itertools

    seen = b""
    for chunk in raw:
        seen += chunk
        if b"\n" in seen:
            break
    line = seen.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    names = next(csv.reader([line]), [])
    if not any(n.strip() for n in names):
        raise DataError("the CSV file has no header line")
    return names, seen.split(b"\n", 1)[1], itertools.chain([seen], raw)


def _column(array: Any, name: str = "", text_columns: set[str] | None = None, *, unchecked: bool = False) -> Any:
    """Return a float64 array when every value parses as a number, else dictionary-encoded text.

    ``unchecked``: the text's UTF-8 was not checked (CSV); undecodable bytes are replaced.
    ``text_columns`` remembers the columns that did not parse, so later batches skip the attempt.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_float64(array.type):
        return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_floating(array.type) or pa.types.is_integer(array.type) or pa.types.is_boolean(array.type):
        return np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    text = text_columns if text_columns is not None else set()
    if (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)) and name not in text:
        try:  # a clean number column parses as it is (trimming changes nothing that parses)
            return np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        try:
            return np.asarray(
                pc.cast(pc.utf8_trim_whitespace(array), pa.float64()).to_numpy(zero_copy_only=False),
                dtype=np.float64,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            text.add(name)
    if pa.types.is_dictionary(array.type):
        encoded = array
    else:
        try:
            encoded = pc.dictionary_encode(array)
        except pa.ArrowNotImplementedError:
            return np.asarray(array.to_pylist(), dtype=object)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.intp)
    if unchecked and pa.types.is_string(encoded.dictionary.type):
        # undecodable bytes become U+FFFD, as the standard-library reader decodes them
        raw = encoded.dictionary.cast(pa.binary()).to_pylist()
        return Categorical(codes, [b.decode("utf-8", "replace") for b in raw])
    return Categorical(codes, encoded.dictionary.to_pylist())


def read_parquet(raw: Iterator[bytes], uri: str, stats: ReadStats, chunk_rows: int) -> Iterator[Chunk]:
    """Spool the object to a temporary file (Parquet needs seeks) and yield its record batches."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"cannot read {uri}: Parquet needs pyarrow; install the 'parquet' extra (pip install 'modelpilot[parquet]')"
        ) from None
    with tempfile.TemporaryFile() as spool:
        for part in raw:
            spool.write(part)
        spool.seek(0)
        total = read = 0
        try:
            schema = pq.read_schema(spool)
            text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            spool.seek(0)
            # no pre-buffering and a bounded read buffer: memory stays at about one row group
            parquet = pq.ParquetFile(spool, pre_buffer=False, buffer_size=1 << 20, read_dictionary=text)
            total = parquet.metadata.num_rows
            # columns decoded on pyarrow's threads, converted and binned in the lanes
            for batch in parquet.iter_batches(batch_size=chunk_rows, use_threads=True):
                stats.rows += batch.num_rows
                read += batch.num_rows
                names = batch.schema.names
                columns = run_lanes(lambda i: _column(batch.column(i)), range(len(names)))  # noqa: B023 - used at once
                yield Chunk(dict(zip(names, columns, strict=True)), batch.num_rows)
        except (pa.ArrowInvalid, OSError) as exc:
            problem = " ".join(str(exc).split())
            if total > read:  # the rows the file says it holds but that could not be read are corrupt, counted
                stats.corrupt(uri, f"{total - read} of {total} rows unreadable: {problem}", rows=total - read)
                yield Chunk({}, 0, total - read)
            raise DataError(f"cannot read Parquet {uri}: {problem}") from None
