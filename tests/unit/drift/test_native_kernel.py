"""The native numeric kernel gives the numpy kernel's counts, sums and moments bit for bit, and is built where it can be."""

from __future__ import annotations

import shutil
import sysconfig
from dataclasses import astuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelpilot.drift import _native
from modelpilot.drift._kernels import NumericBinner, Scratch
from modelpilot.drift._native import native_kernel
from tests.unit.drift.test_kernels import SAMPLERS

NATIVE = native_kernel()
needs_native = pytest.mark.skipif(NATIVE is None, reason="the native kernel is not built in this environment")


def both(binner: NumericBinner, x: np.ndarray):
    """The chunk through the native kernel and through numpy."""
    native = binner.chunk(x, Scratch())
    saved = _native._native_state.get("fn")
    _native._native_state["fn"] = None
    try:
        plain = binner.chunk(x, Scratch())
    finally:
        _native._native_state["fn"] = saved
    return native, plain


def assert_same(native, plain):
    assert np.array_equal(native.counts, plain.counts)
    assert native.counts.dtype == plain.counts.dtype == np.int64
    assert native.sums.tobytes() == plain.sums.tobytes()  # bit for bit, not approximately
    # every moment the same float, compared as bytes (so -0.0 and 0.0 differ, and NaN equals NaN)
    assert np.array(astuple(native.stats), dtype=np.float64).tobytes() == (
        np.array(astuple(plain.stats), dtype=np.float64).tobytes()
    ), (native.stats, plain.stats)


def test_the_kernel_is_built_wherever_a_c_compiler_is():
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): the package installs without the native kernel")
    assert NATIVE is not None, "pip install -e . builds modelpilot.drift._binning when a C compiler is present"


@needs_native
@pytest.mark.parametrize(
    "make",
    [*SAMPLERS.values(), lambda rng, n: rng.normal(size=n) * 1e-250],
    ids=[*SAMPLERS.keys(), "tiny"],
)
@pytest.mark.parametrize("special", [False, True], ids=["finite", "with-nan-inf"])
def test_native_chunk_equals_the_numpy_kernel_bit_for_bit(make, special):
    rng = np.random.default_rng(5)
    edges = np.unique(np.quantile(make(rng, 20_000), np.linspace(0, 1, 1001)))
    binner = NumericBinner(edges)
    parts = [make(rng, 70_000), edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)]
    if special:
        parts.append([np.nan, np.inf, -np.inf, np.nan, 0.0, -0.0])
    x = np.concatenate(parts)
    rng.shuffle(x)
    assert_same(*both(binner, x))
    # a strided view is binned from a contiguous copy, with the same result
    assert_same(*both(binner, x[::3]))


@needs_native
@pytest.mark.parametrize(
    "x",
    [
        np.r_[np.zeros(300), -np.zeros(300), np.arange(1.0, 301.0)],  # min is a zero of either sign
        np.r_[-np.arange(1.0, 301.0), -np.zeros(300), np.zeros(300)],  # and max
        np.full(400, -0.0),
        np.r_[np.full(300, np.nan), np.full(300, np.inf)],  # no finite value
        np.r_[np.full(300, 1e300), -np.full(300, 1e300)],  # the scaled moments
        np.r_[np.full(300, 5e-310), np.arange(300.0)],  # a subnormal
    ],
    ids=["signed-zeros-min", "signed-zeros-max", "negative-zeros", "nothing-finite", "overflowing", "subnormal"],
)
def test_native_chunk_matches_where_numpy_decides_by_more_than_the_values(x):
    binner = NumericBinner(np.linspace(-1.0, 400.0, 50))
    assert_same(*both(binner, x))


@needs_native
@settings(max_examples=80, deadline=None)
@given(
    edges=hnp.arrays(np.float64, st.integers(8, 80), elements=st.floats(-1e6, 1e6), unique=True),
    x=hnp.arrays(np.float64, st.integers(256, 3000), elements=st.floats(allow_nan=True, allow_infinity=True)),
)
def test_native_chunk_property(edges, x):
    assert_same(*both(NumericBinner(np.sort(edges)), x))


@needs_native
def test_profiles_built_with_and_without_the_native_kernel_are_identical(monkeypatch):
    from modelpilot.drift import build_reference

    rng = np.random.default_rng(9)
    frame = {
        "a": rng.lognormal(size=300_000),
        "b": np.where(rng.random(300_000) < 0.02, np.nan, rng.normal(size=300_000)),
    }
    with_native = build_reference(frame).to_json()
    monkeypatch.setitem(_native._native_state, "fn", None)
    assert build_reference(frame).to_json() == with_native


@needs_native
@pytest.mark.parametrize(
    "edges",
    [
        np.unique(np.random.default_rng(1).lognormal(sigma=2.0, size=3000)),
        np.unique(np.r_[np.random.default_rng(2).normal(size=500), 1 + 1e-12 * np.arange(40)]),  # crowded cells
        np.linspace(-1e6, 1e6, 9),
        np.unique(np.random.default_rng(3).standard_cauchy(2000)),
    ],
    ids=["lognormal", "near-ties", "few", "cauchy"],
)
def test_the_native_lookup_table_is_numpys(edges, monkeypatch):
    native = NumericBinner(edges)
    monkeypatch.setitem(_native._native_state, "fn", None)
    plain = NumericBinner(edges)
    assert native._lut is not None and plain._lut is not None
    assert np.array_equal(native._lut, plain._lut) and native._lut.dtype == plain._lut.dtype
    assert (native.rounds, native._crowded, native._origin, native._scale) == (
        plain.rounds,
        plain._crowded,
        plain._origin,
        plain._scale,
    )


@needs_native
@pytest.mark.parametrize("n_edges", [1001, 40_000], ids=["int16-table", "wide-table"])
def test_both_table_widths_bin_as_numpy(n_edges):
    rng = np.random.default_rng(4)
    edges = np.unique(rng.normal(size=n_edges * 2))[:n_edges]
    binner = NumericBinner(edges)
    assert (binner._lut16 is not None) == (n_edges <= np.iinfo(np.int16).max)
    if binner._lut16 is not None:
        assert np.array_equal(binner._lut16, binner._lut)
    x = np.r_[rng.normal(size=100_000), edges, [np.nan, np.inf, -np.inf]]
    assert_same(*both(binner, x))
