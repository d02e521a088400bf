"""A boto3 client built on first use: adapters that may never call AWS never build (or import) one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LazyClient"]


class LazyClient:
    """Holds ``client``, or builds it with ``factory`` the first time :attr:`client` is read."""

    def __init__(self, client: Any = None, *, factory: Callable[[], Any] | None = None) -> None:
        if client is None and factory is None:
            raise ValueError(f"{type(self).__name__} needs a client or a factory that builds one")
        self._client = client
        self._factory = factory

    @property
    def client(self) -> Any:
        """The client, built on first use."""
        if self._client is None and self._factory is not None:
            self._client = self._factory()
        return self._client
