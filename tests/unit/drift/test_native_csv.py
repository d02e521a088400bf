"""The native CSV parser reads a typed block as pyarrow does, bit for bit, or gives the block up to pyarrow."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import modelpilot.drift as drift_package
from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.drift import _native
from modelpilot.drift.builder import ProfileAccumulator, build_reference
from modelpilot.drift.io import _arrow
from modelpilot.drift.io.readers import ReadStats, read_capture

NATIVE = _native.native_kernel()
needs_native = pytest.mark.skipif(NATIVE is None, reason="the native kernel is not built in this environment")
NUMBER, TEXT = pa.float64(), pa.string()


def native(block: bytes, types: dict[str, pa.DataType]):
    """The native parser's table of ``block`` (None: given up)."""
    lines = block.count(b"\n")
    return _arrow._native_table(block, lines, list(types), types)


def arrow(block: bytes, types: dict[str, pa.DataType]):
    """pyarrow's typed parse of ``block``, as the reader asks for it (None: it fails)."""
    try:
        return pacsv.read_csv(
            pa.py_buffer(block),
            read_options=pacsv.ReadOptions(column_names=list(types), use_threads=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=True, null_values=_arrow.NULLS, check_utf8=False
            ),
        )
    except pa.ArrowInvalid:
        return None


def columns(table) -> list:
    """A table's columns as the reader hands them on: numbers as float64 bytes (null becomes NaN), texts as lists."""
    out = []
    for column in table.columns:
        if pa.types.is_floating(column.type):
            out.append(np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64).tobytes())
        else:
            out.append(column.to_pylist())
    return out


def pow10_table() -> list[tuple[int, int]]:
    """10^q for q in [-348, 347]: the 128-bit mantissa, most significant bit set, rounded down, as (high, low)."""
    rows = []
    for q in range(-348, 348):
        if q >= 0:
            value = 10**q
            shift = value.bit_length() - 128
            mantissa = value >> shift if shift > 0 else value << -shift
        else:
            divisor = 10**-q
            mantissa = (1 << (divisor.bit_length() + 127)) // divisor
        assert mantissa.bit_length() == 128
        rows.append((mantissa >> 64, mantissa & (2**64 - 1)))
    return rows


def test_the_powers_of_ten_in_the_header_are_computed_again_exactly():
    header = (Path(drift_package.__file__).parent / "_pow10.h").read_text()
    found = [(int(hi, 16), int(lo, 16)) for hi, lo in re.findall(r"\{0x([0-9A-F]{16})u, 0x([0-9A-F]{16})u\}", header)]
    assert found == pow10_table()
    assert found[0] == (0xFA8FD5A0081C0288, 0x1732C869CD60E453)  # 1e-348, as published with the algorithm


@needs_native
@pytest.mark.parametrize(
    "text",
    [
        "0", "-0", "+1", "1.", ".5", "-.5", "00012", "1e5", "1E+05", "1e-5", "1.e3",
        "9007199254740993",  # 2^53 + 1: a tie, to even
        "9007199254740995", "4503599627370497.5", "1e23", "8.98846567431158e307", "1.7976931348623157e308",
        "2.2250738585072014e-308",  # the smallest normal double
        "0.1", "0.3", "123456789012345678", "1234567890123456789", "0.000000000000000000000000123",
        "62.67401327113149", "-0.6716374425330616", "7.479487555380545", "3.141592653589793238",
        "1e-22", "1e22", "123e-22", "4.9406564584124654e-308", "179769313486231570000e288",
        # digits read eight at a time: a word of digits, part of one, and past it
        "12345678", "1234567", "123456789", "12345678.12345678", "0.1234567812345678", "-87654321.7",
        # undecided by the 128-bit product, or outside the normal doubles: read by strtod
        "8226670245133226.0", "4624129783826.1875", "1e400", "-1e400", "1e-400", "4.9e-324",
        "2.2250738585072011e-308", "12345678901234567890123", "1" * 19 + "5", "0." + "0" * 30 + "1" * 25,
    ],
)  # fmt: skip
def test_a_number_is_the_double_pyarrow_reads(text):
    types = {"x": NUMBER}
    for block in (f"{text}\n".encode(), text.encode(), f"{text}\r\n{text}".encode()):  # the end of a block
        ours, theirs = native(block, types), arrow(block, types)
        assert theirs is not None and ours is not None
        assert columns(ours) == columns(theirs)
        assert ours.column(0)[0].as_py() == float(text)


@needs_native
@pytest.mark.parametrize(
    "text",
    [" 1", "1 ", "inf", "-inf", "Infinity", "nAn", "0x10", "1_0", "1d5", "1e", "-", ".", "e5", "1e1234567",
     "1" * 130],
)  # fmt: skip
def test_a_number_not_of_the_simple_form_gives_the_block_up(text):
    assert native(f"{text}\n".encode(), {"x": NUMBER}) is None


@needs_native
def test_random_doubles_written_every_usual_way_read_back_exactly():
    rng = np.random.default_rng(7)
    values = np.concatenate(
        [
            rng.normal(0, 1, 20_000),
            rng.lognormal(3, 4, 20_000),
            rng.uniform(-1e-5, 1e-5, 20_000),
            np.exp(rng.uniform(-700, 700, 20_000)),
            rng.integers(-(10**15), 10**15, 20_000).astype(np.float64),
        ]
    )
    for form in ("{!r}", "{:.17g}", "{:.6f}", "{:.15e}", "{:.3g}"):
        texts = [t for t in (form.format(float(v)) for v in values) if len(t) < 100]  # longer: given up
        block = ("\n".join(texts) + "\n").encode()
        table = native(block, {"x": NUMBER})
        assert table is not None, form
        got = table.column(0).to_numpy()
        assert got.tobytes() == np.array([float(t) for t in texts]).tobytes(), form


digits = st.text("0123456789", min_size=0, max_size=24)


@needs_native
@settings(max_examples=400, deadline=None)
@given(
    sign=st.sampled_from(["", "-", "+"]),
    whole=digits,
    point=st.booleans(),
    fraction=digits,
    exponent=st.none() | st.integers(-400, 400),
)
def test_any_decimal_is_read_as_pyarrow_reads_it_or_given_up(sign, whole, point, fraction, exponent):
    text = sign + whole + ("." + fraction if point else "") + ("" if exponent is None else f"e{exponent}")
    block = f"{text},a\n".encode()
    types = {"x": NUMBER, "c": TEXT}
    ours, theirs = native(block, types), arrow(block, types)
    if ours is not None:
        assert theirs is not None, text
        assert columns(ours) == columns(theirs), text


field = st.sampled_from(["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "a", "b c", "é", " x "])
number = st.sampled_from(["1", "-2.5", "", "NA", "3e3", "1e400", "x", " 1"])


@needs_native
@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(number, field, st.booleans(), st.booleans()), min_size=1, max_size=12),
    ending=st.sampled_from(["\n", "\r\n"]),
    blank=st.booleans(),
    last_newline=st.booleans(),
)
def test_a_block_is_read_as_pyarrow_reads_it_or_given_up(rows, ending, blank, last_newline):
    lines = []
    for value, text, quote_number, quote_text in rows:
        lines.append((f'"{value}"' if quote_number else value) + "," + (f'"{text}"' if quote_text else text))
        if blank:
            lines.append("")
    block = (ending.join(lines) + (ending if last_newline else "")).encode()
    types = {"x": NUMBER, "c": TEXT}
    ours, theirs = native(block, types), arrow(block, types)
    if ours is not None:
        assert theirs is not None, block
        assert ours.schema.equals(theirs.schema)
        assert columns(ours) == columns(theirs), block
        assert ours.column(1).null_count == theirs.column(1).null_count


@needs_native
@pytest.mark.parametrize(
    "block",
    [
        b'1,"a""b"\n',  # a quote within a quoted text
        b'1,a"b\n',  # a quote within a bare one
        b'1,"a"b\n',  # text after the closing quote
        b'1,"a\n',  # a quote that is never closed
        b"1,a,extra\n",  # a field too many
        b"1\n",  # a field too few
        b"1,a\rb\n",  # a lone carriage return
        b'"1""",a\n',
    ],
)
def test_a_block_outside_the_simple_form_is_given_up(block):
    assert native(block, {"x": NUMBER, "c": TEXT}) is None


def read_file(tmp_path, monkeypatch, native_table):
    """Read the folder's CSV with ``native_table`` standing for the native parser (returning None: pyarrow parses)."""
    monkeypatch.setattr(_arrow, "_native_table", native_table)
    stats = ReadStats()
    chunks = list(read_capture(FolderArtifactStore(), str(tmp_path), ["x", "c"], stats, chunk_rows=2048))
    return chunks, stats


@needs_native
def test_a_file_read_natively_gives_the_chunks_and_counts_pyarrow_gives(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    lines = [f"{float(v)!r},{'abc'[i % 3]}" for i, v in enumerate(rng.normal(size=60_000))]
    lines[100] = "NA,"  # missing values
    lines[30_000] = "1,a,extra"  # a corrupt row: its block is given up and parsed by pyarrow
    lines[45_000] = '"2.5","quoted"'
    (tmp_path / "w.csv").write_text("x,c\n" + "\r\n".join(lines) + "\r\n")
    calls = {"native": 0, "given up": 0}
    real = _arrow._native_table

    def counted(*args):
        table = real(*args)
        calls["native" if table is not None else "given up"] += 1
        return table

    ours, our_stats = read_file(tmp_path, monkeypatch, counted)
    theirs, their_stats = read_file(tmp_path, monkeypatch, lambda *args: None)
    assert calls["native"] > 0 and calls["given up"] == 1
    assert (our_stats.rows, our_stats.corrupt_rows, our_stats.examples) == (
        their_stats.rows,
        their_stats.corrupt_rows,
        their_stats.examples,
    )
    assert our_stats.rows == 59_999 and any(":30002:" in e for e in our_stats.examples)
    assert [c.rows for c in ours] == [c.rows for c in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert np.asarray(a.columns["x"]).tobytes() == np.asarray(b.columns["x"]).tobytes()
        assert np.array_equal(a.columns["c"].codes, b.columns["c"].codes)
        assert list(a.columns["c"].categories) == list(b.columns["c"].categories)
    ref = build_reference({"x": rng.normal(size=1000), "c": np.array(list("abcd") * 250, dtype=object)})
    assert ProfileAccumulator(ref).add_all(ours).to_json() == ProfileAccumulator(ref).add_all(theirs).to_json()
