"""Column lanes: independent per-column work spread over a small shared thread pool.

numpy's ufuncs and pyarrow's compute functions release the GIL, so the columns of a
chunk can be binned (or decoded) on every core at once. Each column's work stays in
submission order within its lane, so the results are exactly those of a serial run.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["lane_count", "run_lanes", "set_lane_count"]

T = TypeVar("T")

_lock = threading.Lock()
_state: dict[str, Any] = {"threads": None, "pool": None, "size": 0}
#: more threads than this gains nothing on a chunk of ~25 columns and costs memory (scratch buffers)
_MAX_THREADS = 8


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def lane_count() -> int:
    """Return the number of threads column work runs on (the usable cores, at most 8)."""
    threads = _state["threads"]
    return int(threads) if threads is not None else max(1, min(_cores(), _MAX_THREADS))


def set_lane_count(threads: int | None) -> None:
    """Set the thread count (None: the usable cores); 1 runs every column inline.

    A process of a process pool sets 1: its siblings already use the other cores.
    """
    if threads is not None and threads < 1:
        raise ValueError("threads must be at least 1")
    with _lock:
        _state["threads"] = threads
        pool = _state["pool"]
        _state["pool"] = None
    if pool is not None:
        pool.shutdown(wait=False)


def _pool(threads: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _state["pool"]
        if pool is None or _state["size"] != threads:
            pool = _state["pool"] = ThreadPoolExecutor(threads, thread_name_prefix="drift-lane")
            _state["size"] = threads
        return pool  # type: ignore[no-any-return]


def run_lanes(work: Callable[[T], Any], items: Sequence[T]) -> list[Any]:
    """Return ``[work(item) for item in items]``, the items spread over the lane threads.

    The first exception raised by any item is raised here once every item has finished.
    Called from a lane thread it runs inline (a lane never waits on its own pool).
    """
    threads = lane_count()
    if threads <= 1 or len(items) <= 1 or threading.current_thread().name.startswith("drift-lane"):
        return [work(item) for item in items]
    futures = [_pool(threads).submit(work, item) for item in items]
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error
    return [f.result() for f in futures]
