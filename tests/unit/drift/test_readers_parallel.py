"""The CSV reader parses blocks on every core: corrupt rows are still counted once, no row is lost."""

from __future__ import annotations

import codecs

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.frames import Categorical
from modelpilot.drift.io.readers import ReadStats, read_capture

REF = build_reference({"x": np.arange(100.0), "c": np.array(["a", "b"] * 50, dtype=object)})


def read(tmp_path, use_arrow: bool, chunk_rows: int = 4096):
    stats = ReadStats()
    chunks = list(
        read_capture(
            FolderArtifactStore(), str(tmp_path), ["x", "c"], stats, use_arrow=use_arrow, chunk_rows=chunk_rows
        )
    )
    cur = ProfileAccumulator(REF).add_all(chunks)
    return chunks, stats, cur


def rows_with(rows: int, corrupt: dict[int, bytes]) -> bytes:
    lines = [corrupt.get(i, f"{i}.5,{'ab'[i % 2]}".encode()) for i in range(rows)]
    return b"x,c\n" + b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("use_arrow", [True, False], ids=["pyarrow", "stdlib"])
def test_corrupt_rows_in_any_block_are_counted_once(tmp_path, use_arrow):
    rows = 80_000
    bad = {5: b"1,a,extra", 40_000: b"2", rows - 3: b"3,b,x,y", rows - 1: b"4,a,z"}  # the last ones in the last block
    (tmp_path / "w.csv").write_bytes(rows_with(rows, bad))
    chunks, stats, cur = read(tmp_path, use_arrow)
    assert stats.corrupt_rows == 4 and sum(c.corrupt_rows for c in chunks) == 4 and cur.corrupt_rows == 4
    assert stats.rows == rows - 4 and cur.rows == rows - 4 and cur.features["x"].n == rows - 4


def test_a_row_longer_than_a_block_falls_back_without_losing_or_doubling_rows(tmp_path):
    rows = 60_000
    bad = {100: b"1,a,extra", 30_000: b"7", 55_000: b"9,b,c"}
    body = rows_with(rows, bad).replace(b"\n50000.5,a\n", b"\n50000.5," + b"y" * 100_000 + b"\n")
    (tmp_path / "w.csv").write_bytes(body)
    chunks, stats, cur = read(tmp_path, True)  # 64 KiB blocks: pyarrow fails at the long row
    assert stats.corrupt_files == 0
    assert any(e.startswith(f"{tmp_path / 'w.csv'}:") for e in stats.examples)  # line numbers: the fallback read it
    assert stats.corrupt_rows == 3 and sum(c.corrupt_rows for c in chunks) == 3 and cur.corrupt_rows == 3
    assert stats.rows == rows - 3 and cur.rows == rows - 3
    assert cur.features["x"].n == rows - 3 and cur.features["c"].n == rows - 3
    assert cur.features["c"].unseen == 1  # the long value, once
    xs = np.concatenate(
        [c.columns["x"] if isinstance(c.columns["x"], np.ndarray) else np.zeros(0) for c in chunks if "x" in c.columns]
    )
    assert len(xs) == len(np.unique(xs)) == rows - 3  # every good row once


def test_bytes_that_are_no_utf8_become_replacement_characters_without_a_fallback(tmp_path):
    (tmp_path / "w.csv").write_bytes(b"x,c\n1,a\n2,\xff\xfe\n3, b \n")
    chunks, stats, _ = read(tmp_path, True)
    (column,) = [c.columns["c"] for c in chunks if c.rows]
    assert isinstance(column, Categorical)
    assert sorted(column.categories) == [" b ", "a", "\ufffd\ufffd"]
    assert stats.rows == 3 and stats.corrupt_rows == 0


def test_a_csv_chunk_holds_about_chunk_rows_rows_whatever_the_row_width(tmp_path):
    rows = 20_000
    wide = ",".join(f"f{i}" for i in range(30))
    line = ",".join(["123.456789"] * 30)  # about 330 bytes a row
    (tmp_path / "w.csv").write_text(f"{wide}\n" + f"{line}\n" * rows)
    stats = ReadStats()
    chunks = list(read_capture(FolderArtifactStore(), str(tmp_path), [], stats, use_arrow=True, chunk_rows=4096))
    sizes = [c.rows for c in chunks if c.rows]
    assert sum(sizes) == rows and len(sizes) <= 8  # blocks of about 4096 rows, not 64 KiB of them (~200 rows)


def test_a_block_failing_conversion_is_read_again_alone_as_text_and_counted_exactly(tmp_path, monkeypatch):
    from modelpilot.drift.io import _arrow

    monkeypatch.setattr(_arrow, "_block_bytes", lambda chunk_rows, sample=b"": 1 << 20)
    rows, pad = 60_000, "p" * 200  # wide rows: a chunk of 16,384 rows spans several 1 MiB blocks
    special = {30_000: "oops,a", 30_002: "1,a,extra", 50_001: "n/a?,b"}  # a word, a corrupt row, a later word
    lines = [special.get(i, f"{i}.5,{'ab'[i % 2]}") + f",{pad}" for i in range(rows)]
    (tmp_path / "w.csv").write_text("x,c,pad\n" + "\n".join(lines) + "\n")
    chunks, stats, cur = read(tmp_path, True, chunk_rows=16_384)
    _, _, cur_stdlib = read(tmp_path, False, chunk_rows=16_384)
    x, x_stdlib = cur.features["x"], cur_stdlib.features["x"]
    assert stats.corrupt_files == 0 and stats.corrupt_rows == 1 and sum(c.corrupt_rows for c in chunks) == 1
    assert stats.rows == cur.rows == rows - 1 and x.type_errors == 2 and x.n == rows - 3
    assert np.array_equal(x.counts, x_stdlib.counts) and x.type_errors == x_stdlib.type_errors
    assert cur.features["c"].n == cur_stdlib.features["c"].n == rows - 1
    # only the word's block was read again, alone; the blocks before it were converted while parsing
    (word,) = [
        i
        for i, c in enumerate(chunks)
        if isinstance(c.columns.get("x"), Categorical) and "oops" in c.columns["x"].categories
    ]
    assert chunks[word].rows < 16_384 / 2 < max(c.rows for c in chunks[:word]) and chunks[word].corrupt_rows == 1
    assert all(isinstance(c.columns["x"], np.ndarray) for c in chunks[1:word])
    values = [
        c.columns["x"] if isinstance(c.columns["x"], np.ndarray) else _floats(c.columns["x"]) for c in chunks if c.rows
    ]
    seen = np.concatenate(values)
    good = np.array([i + 0.5 for i in range(rows) if i not in special])
    assert np.array_equal(seen[np.isfinite(seen)], good)  # every well-formed row once, in order


def _floats(column: Categorical) -> np.ndarray:
    table = np.array([float(v) if v.replace(".", "").isdigit() else np.nan for v in column.categories] + [np.nan])
    return table[column.codes]


def test_corrupt_rows_are_reported_with_their_line_numbers(tmp_path):
    rows = 50_000
    bad = {7: b"1,a,extra", 33_333: b"2"}
    path = tmp_path / "w.csv"
    path.write_bytes(rows_with(rows, bad))
    _, stats, _ = read(tmp_path, True)
    assert stats.corrupt_rows == 2
    # row i of the data is line i + 2 (the header is line 1)
    assert [e.split(": ")[0] for e in stats.examples] == [f"{path}:9", f"{path}:33335"]


@pytest.mark.parametrize("use_arrow", [True, False], ids=["pyarrow", "stdlib"])
def test_a_header_without_a_line_end_is_a_file_without_rows(tmp_path, use_arrow):
    (tmp_path / "w.csv").write_bytes(b"x,c")
    chunks, stats, cur = read(tmp_path, use_arrow)
    assert stats.files == 1 and stats.corrupt_files == 0 and stats.rows == 0 and cur.rows == 0
    assert sum(c.rows for c in chunks) == 0


def test_a_block_pyarrow_cannot_parse_hands_the_rest_to_the_standard_library_exactly(tmp_path, monkeypatch):
    from modelpilot.drift.io import _arrow

    rows = 80_000
    bad = {5: b"1,a,extra", 30_000: b"2", 70_000: b"3,b,x"}
    (tmp_path / "w.csv").write_bytes(rows_with(rows, bad))
    parse = _arrow._parse_block

    def failing(data, head, types):  # pyarrow failing on the block that holds row 40,000
        if b"\n40000.5,a\n" in bytes(data):
            return _arrow._Block(None, [], True, 0, "simulated parse failure")
        return parse(data, head, types)

    monkeypatch.setattr(_arrow, "_parse_block", failing)
    chunks, stats, cur = read(tmp_path, True)
    assert any(e.startswith(f"{tmp_path / 'w.csv'}:30002:") for e in stats.examples)
    assert stats.corrupt_files == 0 and stats.corrupt_rows == 3 and sum(c.corrupt_rows for c in chunks) == 3
    assert stats.rows == cur.rows == rows - 3 and cur.features["x"].n == rows - 3
    xs = np.concatenate([_as_floats(c.columns["x"]) for c in chunks if c.rows])
    assert len(xs) == len(np.unique(xs)) == rows - 3  # every good row once


def _as_floats(column):
    return np.asarray(column).astype(np.float64)  # the standard library's chunks hold the texts


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), min_size=0, max_size=30),
    size=st.integers(1, 64),
    part=st.integers(1, 50),
    last_newline=st.booleans(),
)
def test_a_local_file_cut_by_ranges_gives_the_blocks_of_the_same_bytes_streamed(
    tmp_path_factory, lengths, size, part, last_newline
):
    from modelpilot.drift.io import _arrow

    data = b"\n".join(bytes([97 + i % 26]) * n for i, n in enumerate(lengths)) + (b"\n" if last_newline else b"")
    path = tmp_path_factory.mktemp("ranges") / "f.csv"
    path.write_bytes(b"h\n" + data)
    with open(path, "rb") as file:
        ranges = [r.read() for r in _arrow._range_blocks(file.fileno(), 2, size)]
    streamed = [
        bytes(b) for b in _arrow._line_blocks(iter([data[i : i + part] for i in range(0, len(data), part)]), size)
    ]
    assert [r for r in ranges if r] == streamed  # a range within a long line holds nothing
    assert b"".join(ranges) == data  # every line once, in order


@pytest.mark.parametrize("block", [1 << 20, 64])
def test_a_local_file_and_the_same_file_streamed_read_the_same(tmp_path, monkeypatch, block):
    from modelpilot.adapters.local import artifacts
    from modelpilot.drift.io import _arrow

    monkeypatch.setattr(_arrow, "_block_bytes", lambda chunk_rows, sample=b"": block)
    lines = [f"{i}.5,{'ab'[i % 2]}" for i in range(5_000)]
    lines[10] = "1,a,extra"  # a corrupt row, counted with its line number
    lines[20] = "2.5," + "w" * 300  # a line longer than a small block
    (tmp_path / "w.csv").write_bytes(codecs.BOM_UTF8 + ("x,c\r\n" + "\r\n".join(lines)).encode())  # no last newline
    local = read(tmp_path, True, chunk_rows=1000)
    monkeypatch.setattr(artifacts.FolderArtifactStore, "local_file", lambda self, uri: None)
    streamed = read(tmp_path, True, chunk_rows=1000)
    for (chunks, stats, cur), rows in ((local, 4_999), (streamed, 4_999)):
        assert stats.rows == cur.rows == rows and stats.corrupt_rows == 1
        assert any(e.startswith(f"{tmp_path / 'w.csv'}:12:") for e in stats.examples)
    assert [c.rows for c in local[0]] == [c.rows for c in streamed[0]]
    assert local[2].to_json() == streamed[2].to_json()


@pytest.mark.parametrize(
    ("values", "numbers"),
    [
        (["1.5"] * 100 + ["word"] + ["2"] * 10, False),  # the first values parse, a later one does not: text
        ([" 1.5 "] * 100 + ["2"], True),  # numbers with spaces: trimmed, they parse
        ([" 1.5 "] * 100 + ["2 x"], False),
        (["word"] + ["1"] * 100, False),
        (["1"] * 100 + [None], True),
    ],
)
def test_a_text_column_becomes_numbers_only_when_every_value_parses(values, numbers):
    import pyarrow as pa

    from modelpilot.drift.io import _arrow

    text: set[str] = set()
    column = _arrow._column(pa.array(values, type=pa.string()), "x", text, unchecked=True)
    assert isinstance(column, np.ndarray) is numbers and (text == set()) is numbers
    if numbers:
        expected = [float(v) if v is not None else np.nan for v in values]
        assert np.array_equal(column, np.array(expected), equal_nan=True)
