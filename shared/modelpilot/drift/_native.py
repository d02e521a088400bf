"""The native kernel of the drift engine (``_binning.c``), loaded through ctypes on first use.

Built by setuptools where a C compiler is present (an optional extension); where it is not,
or cannot load, :func:`native_kernel` returns None and the numpy kernel of
:mod:`modelpilot.drift._kernels` runs, with the same results.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["NativeKernel", "native_kernel"]

_native_state: dict[str, Any] = {}
_native_lock = threading.Lock()


@dataclass(frozen=True)
class NativeKernel:
    """The native functions (ctypes).

    One chunk's bins, counts, sums, extremes and sum; its squared deviations; a CSV block's columns.
    """

    chunk: Any
    chunk16: Any
    squared_deviations: Any
    lookup_table: Any
    csv_block: Any
    csv_gather: Any
    count_lines: Any


def native_kernel() -> NativeKernel | None:
    """Return the native kernel, or None when the extension is not built here.

    Loaded once, on first use (not at import: cold starts of functions that never bin pay nothing).
    A library built for another platform or architecture (a layer built on the wrong machine) is
    skipped the same way: the numpy kernel gives the same result.
    """
    if "fn" in _native_state:
        return _native_state["fn"]  # type: ignore[no-any-return]
    with _native_lock:
        if "fn" not in _native_state:
            _native_state["fn"] = _load_native()
    return _native_state["fn"]  # type: ignore[no-any-return]


def _load_native() -> NativeKernel | None:
    import ctypes
    import importlib.util

    try:
        spec = importlib.util.find_spec("modelpilot.drift._binning")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith((".so", ".pyd")):
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
        chunk, chunk16 = lib.mp_numeric_chunk, lib.mp_numeric_chunk16
        deviations, table = lib.mp_squared_deviations, lib.mp_lookup_table
        csv_block, csv_gather, count_lines = lib.mp_csv_block, lib.mp_csv_gather, lib.mp_count_lines
    except (OSError, AttributeError):
        return None
    ptr, size, real = ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_double
    for fn in (chunk, chunk16):
        fn.argtypes = [ptr, size, ptr, size, ptr, size, real, real, ptr, ptr, ptr, ptr, ptr]
        fn.restype = None
    deviations.argtypes = [ptr, size, real]
    deviations.restype = real
    table.argtypes = [ptr, size, real, real, size, size, ptr, ptr]
    table.restype = None
    i64 = ctypes.c_int64
    csv_block.argtypes = [ptr, i64, i64, ptr, ptr, ptr, ptr, ptr, ptr, i64]
    csv_block.restype = i64
    csv_gather.argtypes = [ptr, ptr, i64, ptr, ptr]
    csv_gather.restype = None
    count_lines.argtypes = [ptr, i64]
    count_lines.restype = i64
    return NativeKernel(chunk, chunk16, deviations, table, csv_block, csv_gather, count_lines)
