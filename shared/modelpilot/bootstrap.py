"""The composition root: settings → adapters → services → message bus.

Built lazily on first use and cached per process (one Lambda or Functions
container), so importing a handler creates no client and opens no connection.
Tests and the CLI call :func:`bootstrap` with overrides (fakes, other clients).
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from modelpilot.config import Settings

if TYPE_CHECKING:
    from modelpilot.service.messagebus import MessageBus, Services

__all__ = ["bootstrap", "build_services", "get_bus", "reset"]

_BACKENDS = {
    "local": "modelpilot.adapters.local.wiring",
    "aws": "modelpilot.adapters.aws.wiring",
    "azure": "modelpilot.adapters.azure.wiring",
}
_lock = threading.Lock()
_bus: MessageBus | None = None


def build_services(settings: Settings, **overrides: Any) -> Services:
    """Build the :class:`Services` of ``settings.backend``; keyword overrides replace adapters."""
    module_name = _BACKENDS.get(settings.backend)
    if module_name is None:
        from modelpilot.exceptions import InvalidInput

        raise InvalidInput(f"unknown backend {settings.backend!r}; use one of {', '.join(_BACKENDS)}")
    module = importlib.import_module(module_name)
    services: Services = module.build_services(settings, **overrides)
    return services


def bootstrap(settings: Settings | None = None, *, react: bool = True, **overrides: Any) -> MessageBus:
    """Return a new message bus wired for ``settings`` (default: from the environment)."""
    from modelpilot.service.messagebus import MessageBus

    return MessageBus(build_services(settings or Settings.from_env(), **overrides), react=react)


def get_bus() -> MessageBus:
    """Return this process's bus, building it on first call (thread-safe)."""
    global _bus
    if _bus is None:
        with _lock:
            if _bus is None:
                _bus = bootstrap()
    return _bus


def reset() -> None:
    """Forget the cached bus (tests, or after settings change)."""
    global _bus
    with _lock:
        _bus = None
