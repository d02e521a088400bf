"""The CSV reader parses blocks on every core: corrupt rows are still counted once, no row is lost."""

from __future__ import annotations

import numpy as np
import pytest

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
