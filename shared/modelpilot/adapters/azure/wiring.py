"""Wires the Azure backend (``--backend azure``, Azure Functions).

Storage is reached either with a connection string read from the app setting
*named* by ``settings.azure_storage_connection_setting`` (Azurite, local runs; the
string itself is never in code or config files) or with the account URL and
``DefaultAzureCredential`` (the function app's managed identity). Event Grid, Key
Vault and Azure Monitor always use the credential.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from modelpilot.adapters.azure.blob import BlobArtifactStore
from modelpilot.adapters.azure.idempotency import TableIdempotencyStore
from modelpilot.adapters.azure.registry import TableRegistry
from modelpilot.exceptions import ArtifactMissing, InvalidInput
from modelpilot.policy import default_policy, load_policy, load_policy_text
from modelpilot.service.messagebus import Services

if TYPE_CHECKING:
    from collections.abc import Callable

    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from modelpilot.config import Settings
    from modelpilot.policy import Policy
    from modelpilot.ports import ArtifactStore

__all__ = ["build_services", "policy_loader", "storage_clients"]


def _connection_string(setting: str) -> str:
    value = os.environ.get(setting)
    if not value:
        raise InvalidInput(
            f"app setting {setting} (named by MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING) "
            "is empty; set it to the storage connection string or use an account URL",
            setting=setting,
        )
    return value


def storage_clients(
    settings: Settings, credential: TokenCredential | None
) -> tuple[BlobServiceClient, TableServiceClient]:
    """Return the blob and table service clients of ``settings``."""
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    if settings.azure_storage_connection_setting:
        conn = _connection_string(settings.azure_storage_connection_setting)
        return BlobServiceClient.from_connection_string(conn), TableServiceClient.from_connection_string(conn)
    account_url = settings.azure_storage_account_url
    if not account_url:
        raise InvalidInput(
            "the Azure backend needs MODELPILOT_AZURE_STORAGE_ACCOUNT_URL "
            "(https://<account>.blob.core.windows.net) or "
            "MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING"
        )
    table_url = settings.azure_table_endpoint or account_url.replace(".blob.", ".table.")
    return (
        BlobServiceClient(account_url, credential=credential),
        TableServiceClient(endpoint=table_url, credential=credential),
    )


def policy_loader(settings: Settings, artifacts: ArtifactStore) -> Callable[[], Policy]:
    """Return a cached loader: ``settings.policy`` (a file or ``az://`` URI), else
    ``az://<container>/modelpilot.yaml``, else the default policy."""

    @functools.cache
    def load() -> Policy:
        source = settings.policy
        if source and not source.startswith("az://"):
            return load_policy(source)
        uri = source or f"az://{settings.azure_container}/modelpilot.yaml"
        try:
            text = artifacts.read_bytes(uri, max_bytes=1024 * 1024).decode("utf-8")
        except ArtifactMissing:
            if source:
                raise
            return default_policy()
        return load_policy_text(text, source=uri)

    return load


def _credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def build_services(settings: Settings, **overrides: Any) -> Services:
    """Return services backed by Blob Storage, Table Storage, Event Grid, Key Vault and Azure Monitor.

    ``credential`` may be passed among ``overrides``; every other override replaces
    a :class:`Services` field.
    """
    from modelpilot.adapters.azure.eventgrid import (
        EventGridNotifier,
        EventGridPublisher,
        LogNotifier,
        LogPublisher,
    )

    credential: TokenCredential | None = overrides.pop("credential", None)
    if credential is None and not settings.azure_storage_connection_setting:
        credential = _credential()
    blob, tables = storage_clients(settings, credential)
    artifacts = overrides.get("artifacts") or BlobArtifactStore(blob)
    parts: dict[str, Any] = {
        "registry": TableRegistry(tables.get_table_client(settings.azure_registry_table)),
        "artifacts": artifacts,
        "policy_loader": policy_loader(settings, artifacts),
        "idempotency": TableIdempotencyStore(tables.get_table_client(settings.azure_idempotency_table)),
        "data_root": settings.data_root or f"az://{settings.azure_container}/monitoring",
    }
    cloud = credential or _credential()
    if settings.azure_eventgrid_endpoint:
        from azure.eventgrid import EventGridPublisherClient

        client = EventGridPublisherClient(settings.azure_eventgrid_endpoint, cloud)
        parts["publisher"], parts["notifier"] = EventGridPublisher(client), EventGridNotifier(client)
    else:
        parts["publisher"], parts["notifier"] = LogPublisher(), LogNotifier()
    if settings.azure_keyvault_url:
        from azure.keyvault.secrets import SecretClient

        from modelpilot.adapters.azure.keyvault import KeyVaultSecrets

        parts["secrets"] = KeyVaultSecrets(SecretClient(settings.azure_keyvault_url, cloud))
    from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource

    parts["metrics_sources"] = {"azure_monitor": AzureMonitorMetricsSource(cloud)}
    parts.update(overrides)
    return Services(**parts)
