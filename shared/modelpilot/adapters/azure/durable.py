"""The drift fan-out's starter on Durable Functions: one ``drift_window`` orchestration per window.

The Durable client is no long-lived client: the Functions host hands one to each invocation
of a function with a durable client binding (the ``drift_batch`` timer). The timer binds it
for the invocation (:meth:`DurableFanOutStarter.bound`); outside such an invocation the
starter is not :meth:`~DurableFanOutStarter.ready` and the drift batch reads the window inline.

The instance id is the window's execution name
(``modelpilot.service.drift.window.execution_name``): a timer firing twice asks for the same
instance, finds it (in any state) and starts nothing. ``host.json`` sets
``overridableExistingInstanceStates`` to ``NonRunningStates``, so two firings racing past that
check cannot replace a running instance: the second start fails, the instance is then found,
and the window still runs once.

The client's methods are coroutines on the invocation's event loop; the drift batch runs
synchronously on a worker thread, so each call is handed to that loop and waited for.
"""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import TransientError
from modelpilot.ports import FanOutStarter

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator

__all__ = ["ORCHESTRATION", "DurableFanOutStarter"]

#: the orchestrator function's name (functions/azure/drift_durable.py)
ORCHESTRATION = "drift_window"

_client: ContextVar[tuple[Any, asyncio.AbstractEventLoop | None] | None] = ContextVar(
    "modelpilot_durable_client", default=None
)


class DurableFanOutStarter(FanOutStarter):
    """Starts ``drift_window`` instances through the invocation's Durable client."""

    batches_inline = True

    def __init__(self, *, min_bytes: int, timeout_seconds: float = 60.0) -> None:
        self.min_bytes = min_bytes
        self.timeout_seconds = timeout_seconds

    def ready(self) -> bool:
        return _client.get() is not None

    @contextmanager
    def bound(self, client: Any) -> Iterator[None]:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        token = _client.set((client, loop))
        try:
            yield
        finally:
            _client.reset(token)

    def start(self, name: str, execution_input: dict[str, Any]) -> bool:
        bound = _client.get()
        if bound is None:
            raise TransientError("no Durable client is bound: only the drift_batch timer starts orchestrations")
        client, loop = bound
        if self._exists(client, loop, name):
            return False
        try:
            self._wait(loop, client.start_new(ORCHESTRATION, name, execution_input))
        except Exception as exc:  # the SDK raises plain Exception for every refusal
            if self._exists(client, loop, name):  # a twin firing started it first
                return False
            raise TransientError(f"Durable Functions could not start {ORCHESTRATION} instance {name}: {exc}") from exc
        return True

    def _exists(self, client: Any, loop: asyncio.AbstractEventLoop | None, name: str) -> bool:
        try:
            status = self._wait(loop, client.get_status(name))
        except Exception as exc:  # the SDK raises plain Exception for every failure
            raise TransientError(f"Durable Functions status of instance {name} unavailable: {exc}") from exc
        return getattr(status, "runtime_status", None) is not None

    def _wait(self, loop: asyncio.AbstractEventLoop | None, call: Coroutine[Any, Any, Any]) -> Any:
        if loop is None or not loop.is_running():
            return asyncio.run(call)
        return asyncio.run_coroutine_threadsafe(call, loop).result(timeout=self.timeout_seconds)
