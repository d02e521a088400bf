"""Readers stream CSV, JSON Lines, SageMaker data capture and Parquet; corrupt input is counted."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.frames import Chunk, to_float
from modelpilot.drift.io.readers import ReadStats, detect_format, iter_lines, read_capture
from modelpilot.exceptions import ArtifactMissing
from modelpilot.testing import InMemoryArtifactStore

EVENTS = Path(__file__).resolve().parents[2] / "events"
FEATURES = ["tenure", "charges", "calls", "plan"]


def read_all(store, uri, features=FEATURES, **kw) -> tuple[list[Chunk], ReadStats]:
    stats = ReadStats()
    return list(read_capture(store, uri, features, stats, **kw)), stats


def column(chunks: list[Chunk], name: str) -> list:
    out: list = []
    for c in chunks:
        values = c.columns.get(name)
        if values is None:
            out += [None] * c.rows
        elif hasattr(values, "codes"):
            out += [values.categories[k] if k >= 0 else None for k in values.codes]
        else:
            out += list(values)
    return out


@pytest.mark.parametrize("use_arrow", [False, True], ids=["stdlib", "pyarrow"])
def test_csv_with_corrupt_lines(tmp_path, use_arrow):
    (tmp_path / "a.csv").write_text(
        "tenure,charges,calls,plan\n1,2.5,0,basic\n3,4\n5,abc,1,pro\n,7,2,\n8,9,1,basic,extra\n"
    )
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path), use_arrow=use_arrow)
    assert stats.rows == 3 and stats.corrupt_rows == 2 and stats.files == 1
    assert sum(c.corrupt_rows for c in chunks) == 2
    assert len(stats.examples) == 2 and all("fields" in e for e in stats.examples)
    tenure, errors = to_float(np.array(column(chunks, "tenure"), dtype=object))
    assert np.allclose(tenure, [1, 5, np.nan], equal_nan=True) and errors == 0
    charges, errors = to_float(np.array(column(chunks, "charges"), dtype=object))
    assert errors == 1 and np.isnan(charges[1])
    assert column(chunks, "plan") in (["basic", "pro", None], ["basic", "pro", ""])


@pytest.mark.parametrize("use_arrow", [False, True], ids=["stdlib", "pyarrow"])
def test_csv_is_streamed_in_chunks(tmp_path, use_arrow):
    n = 50_000
    body = "x,c\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(n))
    (tmp_path / "big.csv").write_text(body)
    chunks, stats = read_all(
        FolderArtifactStore(), str(tmp_path / "big.csv"), ["x", "c"], use_arrow=use_arrow, chunk_rows=4096
    )
    assert stats.rows == n and len(chunks) > 1
    x, _ = to_float(np.array(column(chunks, "x"), dtype=object))
    assert x.sum() == n * (n - 1) / 2


def test_json_lines_and_gzip(tmp_path):
    text = '{"tenure": 1, "plan": "pro"}\nnot json\n[1, 2]\n\n{"tenure": "x", "charges": 3.5}\n'
    (tmp_path / "a.jsonl").write_text(text)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b'{"tenure": 4}\n'))
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path))
    assert stats.rows == 3 and stats.corrupt_rows == 2 and stats.files == 2
    assert column(chunks, "tenure") == [1, "x", 4]
    assert column(chunks, "charges") == [None, 3.5, None]


def test_sagemaker_capture_sample(tmp_path):
    sample = (EVENTS / "sagemaker_data_capture.jsonl").read_text()
    widths = [
        len(json.loads(line)["captureData"]["endpointInput"]["data"].strip().split(",")) for line in sample.splitlines()
    ]
    store = InMemoryArtifactStore()
    store.write_bytes("mem://cap/2022/02/14/17/capture.jsonl", sample.encode())
    names = [f"f{i}" for i in range(widths[0])]
    chunks, stats = read_all(store, "mem://cap", names)
    good = sum(w == widths[0] for w in widths)
    assert stats.rows == good and stats.corrupt_rows == len(widths) - good
    assert column(chunks, "f0")[0] == "69" and column(chunks, "f2")[0] == "153.7"


def test_sagemaker_capture_encodings_and_corrupt_records():
    store = InMemoryArtifactStore()
    store.write_bytes("mem://cap/x.jsonl", (EVENTS / "sagemaker_data_capture_modelpilot.jsonl").read_bytes())
    chunks, stats = read_all(store, "mem://cap")
    # CSV (2 rows) + JSON instances (2) + base64 CSV (1) + base64 JSON (1); three corrupt records
    assert stats.rows == 6 and stats.corrupt_rows == 3
    assert column(chunks, "tenure") == ["12.5", "3.0", 1.5, 2.5, "7.0", 9.0]
    assert column(chunks, "plan") == ["basic", "pro", "pro", "basic", "basic", "pro"]
    assert any("BASE64" in e for e in stats.examples) and any("3 fields" in e for e in stats.examples)


def test_parquet_batches(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"tenure": np.arange(10_000, dtype=float), "plan": ["a", "b"] * 5000})
    pq.write_table(table, tmp_path / "part.parquet", row_group_size=3000)
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path), ["tenure", "plan"], chunk_rows=2048)
    assert stats.rows == 10_000 and len(chunks) >= 5
    assert np.array_equal(np.concatenate([c.columns["tenure"] for c in chunks]), np.arange(10_000.0))
    assert column(chunks, "plan")[:3] == ["a", "b", "a"]


def test_a_local_parquet_file_is_read_in_place_and_a_streamed_one_through_a_spool(tmp_path, monkeypatch):
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"tenure": np.arange(5_000, dtype=float), "plan": ["a", "b"] * 2500})
    pq.write_table(table, tmp_path / "part.parquet", row_group_size=1000)
    folder = FolderArtifactStore()
    assert folder.local_file(str(tmp_path / "part.parquet")) == str(tmp_path / "part.parquet")
    assert folder.local_file(str(tmp_path / "missing.parquet")) is None
    assert folder.local_file(str(tmp_path)) is None  # a folder holds no object's bytes
    spools = []
    real = tempfile.NamedTemporaryFile

    def counted(*args, **kwargs):
        spools.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", counted)
    chunks, stats = read_all(folder, str(tmp_path), ["tenure", "plan"])
    assert stats.rows == 5_000 and spools == []  # no copy of a file that is already on disk
    memory = InMemoryArtifactStore()
    memory.write_bytes("mem://w/part.parquet", (tmp_path / "part.parquet").read_bytes())
    assert memory.local_file("mem://w/part.parquet") is None
    streamed, stats = read_all(memory, "mem://w/", ["tenure", "plan"])
    assert stats.rows == 5_000 and spools == [1]
    assert np.array_equal(
        np.concatenate([c.columns["tenure"] for c in streamed]), np.concatenate([c.columns["tenure"] for c in chunks])
    )


def test_parquet_without_pyarrow_is_a_clear_corrupt_file(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    (tmp_path / "part.parquet").write_bytes(b"PAR1")
    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path))
    assert chunks == [] and stats.corrupt_files == 1
    assert "install the 'parquet' extra" in stats.examples[0]


def test_corrupt_files_are_counted_and_the_read_goes_on(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip at all")
    (tmp_path / "good.csv").write_text("tenure\n1\n2\n")
    (tmp_path / "notes.txt").write_text("ignored")
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path))
    assert sum(c.rows for c in chunks) == 2
    assert stats.files == 3 and stats.corrupt_files == 2 and stats.rows == 2
    assert stats.skipped_files == [str(tmp_path / "notes.txt")]
    assert stats.corrupt_share == pytest.approx(2 / 4)


def test_missing_prefix_is_artifact_missing(tmp_path):
    with pytest.raises(ArtifactMissing):
        read_all(FolderArtifactStore(), str(tmp_path / "nothing"))


def test_detect_format_and_line_splitting():
    assert detect_format("a/b/part.CSV") == "csv" and detect_format("x.jsonl.gz") == "jsonl"
    assert detect_format("x.parquet") == "parquet" and detect_format("x.bin") is None
    pieces = [b"a,b\r\n1,", b"2\n\xc3", b"\xa9,3\n4,5"]
    assert list(iter_lines(iter(pieces))) == ["a,b", "1,2", "é,3", "4,5"]


def test_read_then_profile_end_to_end(tmp_path):
    rng = np.random.default_rng(1)
    ref = build_reference({"tenure": rng.normal(10, 2, 2000), "plan": np.array(["a", "b"] * 1000, dtype=object)})
    buf = io.StringIO()
    buf.write("tenure,plan,extra\n")
    for v in rng.normal(10, 2, 500):
        buf.write(f"{v:.3f},a,1\n")
    (tmp_path / "w.csv").write_text(buf.getvalue())
    stats = ReadStats()
    cur = ProfileAccumulator(ref).add_all(read_capture(FolderArtifactStore(), str(tmp_path), ["tenure", "plan"], stats))
    assert cur.rows == 500 and cur.features["tenure"].n == 500
    assert cur.extra_columns == {"extra": 500}


@pytest.mark.parametrize("use_arrow", [False, True], ids=["stdlib", "pyarrow"])
def test_a_stray_word_deep_in_a_numeric_column_is_a_type_error(tmp_path, use_arrow):
    lines = ["x,c"] + [f"{i}.5,{'ab'[i % 2]}" for i in range(30_000)]
    lines[25_000] = "oops,a"
    (tmp_path / "w.csv").write_text("\n".join(lines) + "\n")
    ref = build_reference({"x": np.arange(100.0), "c": np.array(["a", "b"] * 50, dtype=object)})
    stats = ReadStats()
    cur = ProfileAccumulator(ref).add_all(
        read_capture(FolderArtifactStore(), str(tmp_path), ["x", "c"], stats, use_arrow=use_arrow, chunk_rows=2048)
    )
    assert stats.corrupt_files == 0 and cur.rows == 30_000
    assert cur.features["x"].type_errors == 1 and cur.features["x"].n == 29_999


# -- awkward input: nested JSON values, truncated gzip, BOMs, rows pyarrow cannot convert ----------
def test_a_dict_or_list_in_a_json_field_is_a_counted_type_error_not_a_crash(tmp_path):
    lines = [
        json.dumps({"x": 1.5, "plan": "basic"}),
        json.dumps({"x": 2.5, "plan": {"nested": True}}),
        json.dumps({"x": [1, 2], "plan": ["a", "b"]}),
        json.dumps({"x": 3.5, "plan": "pro"}),
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    ref = build_reference({"x": np.arange(10.0), "plan": np.array(["basic", "pro"] * 5, dtype=object)})
    stats = ReadStats()
    cur = ProfileAccumulator(ref).add_all(read_capture(FolderArtifactStore(), str(tmp_path), ["x", "plan"], stats))
    assert stats.rows == 4 and stats.corrupt_files == 0
    plan, x = cur.features["plan"], cur.features["x"]
    assert plan.n == 2 and plan.type_errors == 2  # type: ignore[union-attr]
    assert x.n == 3 and x.type_errors == 1  # type: ignore[union-attr]
    assert any("a.jsonl:2" in e and "plan" in e for e in stats.examples)


def test_nested_values_in_an_in_memory_frame_are_type_errors():
    ref = build_reference({"plan": np.array(["basic", "pro"] * 5, dtype=object)})
    values = np.empty(4, dtype=object)
    values[:] = ["basic", {"a": 1}, [1, 2], "pro"]
    cur = ProfileAccumulator(ref).add_all({"plan": values})
    plan = cur.features["plan"]
    assert plan.n == 2 and plan.type_errors == 2  # type: ignore[union-attr]


def test_a_truncated_gzip_is_a_corrupt_file_and_none_of_its_rows_are_used(tmp_path):
    body = "".join(json.dumps({"tenure": i, "plan": "basic"}) + "\n" for i in range(20_000)).encode()
    packed = gzip.compress(body)
    (tmp_path / "cut.jsonl.gz").write_bytes(packed[: len(packed) // 2])
    (tmp_path / "whole.jsonl.gz").write_bytes(gzip.compress(b'{"tenure": 1}\n'))
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path))
    assert stats.corrupt_files == 1 and "truncated" in stats.examples[0]
    assert stats.rows == 1 and sum(c.rows for c in chunks) == 1


def test_a_gzip_with_a_bad_checksum_is_a_corrupt_file(tmp_path):
    packed = bytearray(gzip.compress(b'{"tenure": 1}\n' * 100))
    packed[-8] ^= 0xFF  # the CRC32 of the trailer
    (tmp_path / "bad.jsonl.gz").write_bytes(bytes(packed))
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path))
    assert stats.corrupt_files == 1 and stats.rows == 0 and not chunks


def test_concatenated_gzip_members_are_all_read(tmp_path):
    (tmp_path / "two.jsonl.gz").write_bytes(gzip.compress(b'{"tenure": 1}\n') + gzip.compress(b'{"tenure": 2}\n'))
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path))
    assert stats.corrupt_files == 0 and column(chunks, "tenure") == [1, 2]


@pytest.mark.parametrize("use_arrow", [False, True], ids=["stdlib", "pyarrow"])
@pytest.mark.parametrize("packed", [False, True], ids=["plain", "gzip"])
def test_a_utf8_bom_is_stripped(tmp_path, use_arrow, packed):
    text = "\ufefftenure,plan\n1,basic\n2,pro\n".encode()
    name = "bom.csv.gz" if packed else "bom.csv"
    (tmp_path / name).write_bytes(gzip.compress(text) if packed else text)
    (tmp_path / "bom.jsonl").write_bytes('\ufeff{"tenure": 3}\n'.encode())
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path), use_arrow=use_arrow)
    assert stats.corrupt_rows == 0 and stats.corrupt_files == 0 and stats.rows == 3
    assert all(set(c.columns) <= {"tenure", "plan"} for c in chunks)
    assert sorted(float(v) for v in column(chunks, "tenure")) == [1.0, 2.0, 3.0]


def test_pyarrow_with_a_bom_and_a_bad_value_after_the_first_mib_drops_no_row(tmp_path):
    rows = 60_000
    lines = [f"{i}.25,{'ab'[i % 2]},padding-padding" for i in range(rows)]
    lines[50_000] = "not-a-number,a,padding-padding"
    (tmp_path / "w.csv").write_bytes(("\ufeffx,c,pad\n" + "\n".join(lines) + "\n").encode())
    assert (tmp_path / "w.csv").stat().st_size > 1 << 20
    ref = build_reference({"x": np.arange(100.0), "c": np.array(["a", "b"] * 50, dtype=object)})
    stats = ReadStats()
    cur = ProfileAccumulator(ref).add_all(
        read_capture(FolderArtifactStore(), str(tmp_path), ["x", "c"], stats, use_arrow=True)
    )
    assert stats.corrupt_files == 0 and stats.rows == rows and cur.rows == rows
    assert cur.features["x"].type_errors == 1 and cur.features["x"].n == rows - 1
    assert cur.extra_columns == {"pad": rows}


def test_pyarrow_falls_back_without_dropping_rows_when_a_later_block_cannot_be_read(tmp_path):
    rows = 60_000
    body = b"x,c\n" + b"".join(f"{i},{'ab'[i % 2]}\n".encode() for i in range(rows))
    cut = body.index(b"\n50000,") + 1
    body = body[:cut] + b"50000,\xff\xfe\n" + body[body.index(b"\n", cut) + 1 :]  # invalid UTF-8 deep in the file
    body = body.replace(b"\n100,a\n", b"\n100,a,extra\n").replace(b"\n55001,b\n", b"\n55001,b,extra\n")
    (tmp_path / "u.csv").write_bytes(body)
    ref = build_reference({"x": np.arange(100.0), "c": np.array(["a", "b"] * 50, dtype=object)})
    stats = ReadStats()
    cur = ProfileAccumulator(ref).add_all(
        read_capture(FolderArtifactStore(), str(tmp_path), ["x", "c"], stats, use_arrow=True, chunk_rows=4096)
    )
    assert stats.corrupt_files == 0 and stats.corrupt_rows == 2
    assert stats.rows == rows - 2 and cur.rows == rows - 2 and cur.corrupt_rows == 2
    assert cur.features["x"].n == rows - 2 and cur.features["c"].n == rows - 2
    assert cur.features["c"].unseen == 1  # the undecodable bytes: one value never seen in the reference


def test_a_parquet_file_damaged_part_way_counts_every_unread_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 200_000
    table = pa.table({"x": np.arange(rows, dtype=float), "c": pa.array([f"v{i % 7}" for i in range(rows)])})
    pq.write_table(table, tmp_path / "p.parquet", row_group_size=50_000)
    offset = pq.ParquetFile(tmp_path / "p.parquet").metadata.row_group(2).column(0).data_page_offset
    data = bytearray((tmp_path / "p.parquet").read_bytes())
    data[offset : offset + 12] = b"\xff" * 12  # the page header of the third row group
    (tmp_path / "p.parquet").write_bytes(bytes(data))
    chunks, stats = read_all(FolderArtifactStore(), str(tmp_path), ["x", "c"], chunk_rows=65_536)
    read = sum(c.rows for c in chunks)
    assert 0 < read < rows and stats.corrupt_files == 1
    assert stats.rows == read and stats.corrupt_rows == rows - read
    assert sum(c.corrupt_rows for c in chunks) == rows - read
