"""pyarrow-backed readers: streaming CSV (fast path) and Parquet (the ``parquet`` extra)."""

from __future__ import annotations

import codecs
import contextlib
import math
import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift._lanes import lane_count, run_lanes
from modelpilot.drift._native import native_kernel
from modelpilot.drift.frames import Categorical, Chunk
from modelpilot.exceptions import DataError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from modelpilot.drift.io.stats import ReadStats

__all__ = ["read_csv_arrow", "read_parquet"]


def _block_bytes(chunk_rows: int, sample: bytes = b"") -> int:
    """CSV parse block size: ``chunk_rows`` rows as wide as the ``sample``'s lines, 64 KiB to 1 MiB (4 MiB natively).

    pyarrow parses blocks of about 1 MiB fastest (16 MiB blocks cost twice the CPU); the native
    parser's cost per block (a few dozen arrays to set up) is a tenth of its parse of 1 MiB, so it
    takes blocks of 4 MiB. The reader gathers blocks into chunks of about ``chunk_rows`` rows,
    since much smaller chunks make the per-chunk work (a few dozen numpy calls per column) cost
    more than the binning itself.
    """
    lines = sample.count(b"\n")
    width = len(sample[: sample.rfind(b"\n") + 1]) / lines if lines else 16
    largest = 1 << 22 if native_kernel() is not None else 1 << 20
    return int(min(largest, max(1 << 16, chunk_rows * width * 1.1)))


_NEWLINE = ord("\n")
NULLS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]


def read_csv_arrow(
    raw: Iterator[bytes],
    uri: str,
    stats: ReadStats,
    chunk_rows: int,
    rest: Callable[[int, int], Iterator[Chunk]] | None = None,
    *,
    local: str | None = None,
) -> Iterator[Chunk]:
    """Stream a CSV file: cut into blocks at line ends, each block parsed in the lanes.

    A ``local`` file (``raw`` is then not started) is cut by byte ranges: each lane reads its
    own block's lines from the file, so no byte passes through this thread.

    The header is parsed here and given to pyarrow as the column names, so the names and their
    types always match. The first block is read as text and tells which columns are numbers;
    the next blocks are parsed with those columns typed as float64, so they are converted while
    parsing, on the lane threads: by the native parser (``_csv.c``, where it is built) when the
    block is of the simple form it reads, which is most CSV, otherwise by pyarrow, with the same
    result. A block where that conversion fails (a stray word in a number column) is parsed
    again as text, alone, and converted as the first block was: its words are type errors,
    counted exactly, and the column is read as text from then on. Only that block is read twice;
    no row is lost or counted twice.

    pyarrow does not check the text's UTF-8 (reading the columns as binary instead costs twice
    the parse time), so text that is no UTF-8 fails no block: it becomes replacement characters,
    as in the standard-library reader. A corrupt row (wrong number of fields) is counted with its
    line number. When pyarrow cannot parse a block even as text, ``rest(rows, counted)`` (the
    standard-library reader) reads the file again, passes over the ``rows`` well-formed rows
    already handed on and recounts the corrupt ones, ``counted`` of which the chunks carried
    already.
    """
    if local is not None and hasattr(os, "pread"):
        with open(local, "rb") as file:
            head, sample, start = _file_header(file.fileno())
            blocks = _range_blocks(file.fileno(), start, _block_bytes(chunk_rows, sample))
            yield from _read_blocks(blocks, head, uri, stats, chunk_rows, rest)
        return
    head, sample, data = _header_split(raw)
    yield from _read_blocks(_line_blocks(data, _block_bytes(chunk_rows, sample)), head, uri, stats, chunk_rows, rest)


def _read_blocks(
    blocks: Iterator[memoryview] | Iterator[_Range],
    head: list[str],
    uri: str,
    stats: ReadStats,
    chunk_rows: int,
    rest: Callable[[int, int], Iterator[Chunk]] | None,
) -> Iterator[Chunk]:
    """Parse the ``blocks`` in the lanes and gather them into chunks (see :func:`read_csv_arrow`)."""
    import pyarrow as pa

    text_columns: set[str] = set()
    typed: dict[str, Any] | None = None  # column types of the typed parse, once the first block was read
    rows = handed = committed = 0  # well-formed and corrupt rows handed on; corrupt rows counted in stats
    line = 2  # of the next block (the header is line 1)
    pending: list[_Block] = []  # parsed blocks gathered into one chunk of about chunk_rows rows
    per_block = 0.0  # rows in a block, from the first one

    def chunk() -> Chunk:
        nonlocal rows, handed
        count = sum(b.table.num_rows for b in pending)
        corrupt = sum(len(b.bad) for b in pending)
        stats.rows += count
        rows += count
        handed += corrupt
        names = pending[0].table.schema.names
        parts = [[b.table.column(i) for b in pending] for i in range(len(names))]
        pending.clear()
        columns = run_lanes(
            lambda i: _column(_joined(parts[i]), names[i], text_columns, unchecked=True), range(len(names))
        )
        return Chunk(dict(zip(names, columns, strict=True)), count, corrupt)

    while True:
        group = list(_take(blocks, 1 if typed is None else _group_blocks(chunk_rows, per_block)))
        if not group:
            break
        types = typed
        parsed = run_lanes(lambda block: _parse_block(_data(block), head, types), group)  # noqa: B023 - used at once
        for block in parsed:
            if block.table is None:  # not even as text: the standard-library reader takes over
                if pending:
                    yield chunk()
                if rest is None:
                    raise DataError(f"cannot read CSV {uri}: {block.error}")
                stats.corrupt_rows -= committed  # the standard-library reader counts the corrupt rows of the whole file
                yield from rest(rows, handed)
                return
            for number, why in block.bad:  # row numbers within the block
                stats.corrupt(f"{uri}:{line + number - 1}", why)
            committed += len(block.bad)
            line += block.lines
            if pending and (
                block.text  # a block read as text is converted alone, as the first one
                or not pending[-1].table.schema.equals(block.table.schema)  # a column became text since
                or sum(b.table.num_rows for b in pending) >= chunk_rows
            ):
                yield chunk()
            pending.append(block)
            if block.text:  # its columns' kinds are known once it is converted
                yield chunk()
        if typed is None or any(b.text for b in parsed):
            first = parsed[0]
            per_block = per_block or float((first.table.num_rows if first.table is not None else 0) + len(first.bad))
            typed = {name: pa.string() if name in text_columns else pa.float64() for name in head}
    if pending:
        yield chunk()


class _Block:
    """A parsed block of CSV lines: its table (None: unparsable), its corrupt rows, whether it was read as text."""

    __slots__ = ("bad", "error", "lines", "table", "text")

    def __init__(self, table: Any, bad: list[tuple[int, str]], text: bool, lines: int, error: str = "") -> None:
        self.table, self.bad, self.text, self.lines, self.error = table, bad, text, lines, error


def _parse_block(data: bytes | memoryview, head: list[str], types: dict[str, Any] | None) -> _Block:
    """Parse one block's bytes with ``types``; as text without them or when they fail."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not data:  # a file's range within a long line: its lines are in the next range
        empty = types or dict.fromkeys(head, pa.string())
        return _Block(pa.Table.from_arrays([pa.array([], type=empty[n]) for n in head], names=head), [], False, 0)
    native = native_kernel()
    buffer = np.frombuffer(data, dtype=np.uint8)
    if native is not None:
        lines = int(native.count_lines(buffer.ctypes.data, len(buffer)))
    else:
        lines = int(np.count_nonzero(buffer == _NEWLINE))
    if types is not None:
        table = _native_table(data, lines, head, types)
        if table is not None:
            return _Block(table, [], False, lines)
    error = ""
    for kinds in ([types] if types is not None else []) + [None]:
        bad: list[tuple[int, str]] = []

        def invalid(row: Any, bad: list[tuple[int, str]] = bad) -> str:
            bad.append((row.number or 1, f"{row.actual_columns} fields, the header has {row.expected_columns}"))
            return "skip"

        try:
            table = pacsv.read_csv(
                pa.py_buffer(data),
                read_options=pacsv.ReadOptions(
                    block_size=max(len(data) + 1, 1 << 16), use_threads=False, column_names=head
                ),
                parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
                # UTF-8 is checked (and undecodable bytes replaced) only in the few distinct texts, in _column
                convert_options=pacsv.ConvertOptions(
                    column_types=kinds or dict.fromkeys(head, pa.string()),
                    strings_can_be_null=True,
                    null_values=NULLS,
                    check_utf8=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            error = str(exc)
            continue
        return _Block(table, bad, kinds is None, lines)
    return _Block(None, [], True, lines, error)


def _native_table(data: bytes | memoryview, lines: int, head: list[str], types: dict[str, Any]) -> Any:
    """Return a typed block's table, parsed by the native CSV parser; None where it is not built or gives the block up.

    The table is the one pyarrow's typed parse gives, except that a missing number is NaN
    rather than null: the two become the same NaN in :func:`_column`.
    """
    import pyarrow as pa

    native = native_kernel()
    if native is None:
        return None
    text = [types[name] != pa.float64() for name in head]
    capacity = lines + 1  # the last line may have no newline
    buffer = np.frombuffer(data, dtype=np.uint8)
    numbers: list[Any] = [None if t else np.empty(capacity) for t in text]
    spans: list[Any] = [np.empty(2 * capacity, dtype=np.int32) if t else None for t in text]  # start, length
    valid: list[Any] = [np.zeros((capacity + 7) // 8, dtype=np.uint8) if t else None for t in text]
    nulls, sizes = np.zeros(len(head), dtype=np.int64), np.zeros(len(head), dtype=np.int64)

    def pointers(arrays: list[Any]) -> Any:
        return np.array([0 if a is None else a.ctypes.data for a in arrays], dtype=np.uintp)

    kinds, to_numbers, to_spans, to_valid = (
        np.array(text, dtype=np.uint8),
        pointers(numbers),
        pointers(spans),
        pointers(valid),
    )
    rows = native.csv_block(
        buffer.ctypes.data, len(buffer), len(head), kinds.ctypes.data, to_numbers.ctypes.data,
        to_spans.ctypes.data, to_valid.ctypes.data, nulls.ctypes.data, sizes.ctypes.data, capacity,
    )  # fmt: skip
    if rows < 0:
        return None
    columns = []
    for i, name in enumerate(head):
        if not text[i]:
            columns.append(pa.Array.from_buffers(pa.float64(), rows, [None, pa.py_buffer(numbers[i])]))
            continue
        offsets, values = np.empty(rows + 1, dtype=np.int32), np.empty(int(sizes[i]), dtype=np.uint8)
        native.csv_gather(buffer.ctypes.data, spans[i].ctypes.data, rows, offsets.ctypes.data, values.ctypes.data)
        mask = pa.py_buffer(valid[i]) if nulls[i] else None
        columns.append(
            pa.Array.from_buffers(
                types[name], rows, [mask, pa.py_buffer(offsets), pa.py_buffer(values)], null_count=int(nulls[i])
            )
        )
    return pa.Table.from_arrays(columns, names=head)


def _data(block: memoryview | _Range) -> bytes | memoryview:
    """Return a block's bytes: a file's range is read here, on the lane that parses it."""
    return block.read() if isinstance(block, _Range) else block


def _joined(parts: list[Any]) -> Any:
    """Return one array of a column's parts (each a chunked array of one parsed block)."""
    import pyarrow as pa

    chunks = [c for part in parts for c in part.chunks]
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return pa.array([], type=parts[0].type)
    return pa.concat_arrays(chunks)


def _take(items: Iterator[Any], n: int) -> Iterator[Any]:
    for _, item in zip(range(n), items, strict=False):
        yield item


def _line_blocks(data: Iterator[bytes], size: int) -> Iterator[memoryview]:
    """Cut a byte stream into blocks at line ends (views, not copies).

    Block k holds the lines that start in the stream's bytes ``[k * size, (k + 1) * size)``.
    Like pyarrow's own chunker (``newlines_in_values`` off), every newline ends a row. The
    blocks are those a local file's :class:`_Range` reads, so a file read in place and the same
    file streamed give the same chunks.
    """
    buffer, base, bound = b"", 0, size  # base: the offset of buffer[0]; bound: the end of the current block's bytes
    for part in data:
        buffer = buffer + part if buffer else part
        view, start = memoryview(buffer), 0
        while True:
            while bound <= base + start:  # a line longer than a block: the blocks it covers hold no line
                bound += size
            cut = buffer.find(b"\n", bound - 1 - base)  # the line that ends the block holds byte bound - 1
            if cut < 0:
                break
            yield view[start : cut + 1]
            start = cut + 1
        buffer, base = buffer[start:], base + start
    if buffer:
        yield memoryview(buffer)


class _Range:
    """The lines of a local file that start in the bytes ``[low, high)``: read by the lane that parses them.

    A line belongs to the range its first byte lies in, so the ranges of one file hold each of
    its lines exactly once, whatever their lengths (a range within a long line holds none).
    """

    __slots__ = ("fd", "first", "high", "low")

    def __init__(self, fd: int, low: int, high: int, first: bool) -> None:
        self.fd, self.low, self.high, self.first = fd, low, high, first

    def read(self) -> bytes:
        start = self.low if self.first else _line_start(self.fd, self.low)
        if start >= self.high:
            return b""
        end = _line_start(self.fd, self.high)
        return os.pread(self.fd, end - start, start)


def _line_start(fd: int, at: int) -> int:
    """Return where the first line that starts at or after byte ``at`` starts (the file's size when none does)."""
    pos = at - 1  # a line starts at ``at`` when the byte before it ends a line
    while True:
        window = os.pread(fd, 1 << 16, pos)
        if not window:
            return pos
        found = window.find(b"\n")
        if found >= 0:
            return pos + found + 1
        pos += len(window)


def _range_blocks(fd: int, start: int, size: int) -> Iterator[_Range]:
    """Cut a local file's data, from byte ``start``, into ranges of ``size`` bytes."""
    end = os.fstat(fd).st_size
    for low in range(start, end, size):
        yield _Range(fd, low, min(low + size, end), low == start)


def _file_header(fd: int) -> tuple[list[str], bytes, int]:
    """Return a local CSV file's column names, the data bytes read with them, and where its data starts."""
    seen = b""
    while b"\n" not in seen:
        part = os.pread(fd, 1 << 16, len(seen))
        if not part:
            break
        seen += part
    bom = len(codecs.BOM_UTF8) if seen.startswith(codecs.BOM_UTF8) else 0
    names, sample, _ = _header(iter([seen[bom:]]))
    return names, sample, len(seen) - len(sample)


def _header_split(raw: Iterator[bytes]) -> tuple[list[str], bytes, Iterator[bytes]]:
    """Return the CSV header's column names, the data bytes read with it, and the data's byte stream (no header)."""
    import itertools

    names, sample, _ = _header(raw)
    return names, sample, itertools.chain([sample], raw)


def _group_blocks(chunk_rows: int, per_block: float) -> int:
    """Return how many blocks to parse at once: a chunk's worth, at least one per lane, at most 32."""
    return max(lane_count(), min(32, math.ceil(chunk_rows / max(per_block, 1.0))))


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
    return names, seen.partition(b"\n")[2], itertools.chain([seen], raw)


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
        # a clean number column parses as it is (trimming changes nothing that parses); a failing cast
        # costs about 1 us per value, so the first values are tried first: where they fail, all would
        for prepare in (lambda a: a, pc.utf8_trim_whitespace):
            try:
                pc.cast(prepare(array.slice(0, 64)), pa.float64())
                numbers = pc.cast(prepare(array), pa.float64())
                return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
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


def read_parquet(
    raw: Iterator[bytes], uri: str, stats: ReadStats, chunk_rows: int, *, local: str | None = None
) -> Iterator[Chunk]:
    """Yield the record batches of a Parquet object.

    Parquet needs seeks: a ``local`` file is read in place, any other object is spooled to a
    temporary file first (``raw`` is not started when ``local`` is given).
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            f"cannot read {uri}: Parquet needs pyarrow; install the 'parquet' extra (pip install 'modelpilot[parquet]')"
        ) from None
    with contextlib.ExitStack() as stack:
        if local is None:
            spool = stack.enter_context(tempfile.NamedTemporaryFile(prefix="modelpilot-", suffix=".parquet"))
            for part in raw:
                spool.write(part)
            spool.flush()
            local = spool.name
        # pyarrow's own file reads without the GIL (a Python file object would serialise its decoding threads)
        source = stack.enter_context(pa.OSFile(local))
        total = read = 0
        try:
            schema = pq.read_schema(source)
            text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            # no pre-buffering and a bounded read buffer: memory stays at about one row group
            parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=1 << 20, read_dictionary=text)
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
