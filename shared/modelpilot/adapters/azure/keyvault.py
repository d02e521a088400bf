"""Key Vault as the secrets provider (webhook keys, API tokens).

The function app reads secrets with its managed identity (role *Key Vault Secrets
User*); values are cached for ``ttl_seconds`` so a warm container does not call
Key Vault on every event, and are never logged.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceNotFoundError

from modelpilot.adapters.azure._errors import azure_errors
from modelpilot.exceptions import NotFound
from modelpilot.ports import SecretsProvider

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient

__all__ = ["KeyVaultSecrets"]


class KeyVaultSecrets(SecretsProvider):
    """A :class:`SecretsProvider` over one vault.

    Parameters
    ----------
    client:
        A ``SecretClient`` for the vault URL, built with ``DefaultAzureCredential``.
    ttl_seconds:
        How long a value read is reused.
    """

    def __init__(self, client: SecretClient, *, ttl_seconds: float = 300.0) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def get_secret(self, name: str) -> str:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            with azure_errors(f"read secret {name}"):
                value = self.client.get_secret(name).value
        except ResourceNotFoundError:
            raise NotFound(f"secret {name!r} does not exist in the vault", secret=name) from None
        if value is None:
            raise NotFound(f"secret {name!r} has no value", secret=name)
        with self._lock:
            self._cache[name] = (now + self.ttl_seconds, value)
        return value
