"""The Azure backend's adapters: Table Storage registry, Blob artifacts, Event Grid, Key Vault, Azure Monitor,
and Prometheus when ``MODELPILOT_PROMETHEUS_URL`` is set (its credentials from the Key Vault secret
``MODELPILOT_PROMETHEUS_SECRET`` names); the Azure ML tag write-back when ``MODELPILOT_AZURE_ML_WORKSPACE_ID``
is set; the Durable drift fan-out's starter when ``MODELPILOT_AZURE_DURABLE_DRIFT`` is true.

Storage is reached either with a connection string read from the app setting
*named* by ``settings.azure_storage_connection_setting`` (Azurite, local runs; the
string itself is never in code or config files) or with the account URL and
``DefaultAzureCredential`` (the function app's managed identity). Event Grid, Key
Vault and Azure Monitor always use the credential: one credential object serves
every client of the process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.adapters.azure.durable import DurableFanOutStarter
from modelpilot.config import app_setting
from modelpilot.exceptions import InvalidInput
from modelpilot.policy.loader import POLICY_NAME
from modelpilot.ports import Adapters

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from modelpilot.config import Settings
    from modelpilot.ports import PackageUploader, TrafficRouter

__all__ = ["build_adapters", "build_uploader", "caller_identity", "storage_clients", "traffic_routers"]


def _connection_string(setting: str) -> str:
    value = app_setting(setting)
    if not value:
        raise InvalidInput(
            f"app setting {setting} (named by MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING) "
            "is empty; set it to the storage connection string or use an account URL",
            setting=setting,
        )
    return value


def _malformed(setting: str) -> InvalidInput:
    # the value is a secret: the message names the setting, never what it holds
    return InvalidInput(
        f"app setting {setting} does not hold a valid storage connection string "
        "(expected DefaultEndpointsProtocol=...;AccountName=...;AccountKey=...;... or UseDevelopmentStorage=true)",
        setting=setting,
    )


def storage_clients(
    settings: Settings, credential: TokenCredential | None
) -> tuple[BlobServiceClient, TableServiceClient]:
    """Return the blob and table service clients of ``settings``."""
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    if settings.azure_storage_connection_setting:
        setting = settings.azure_storage_connection_setting
        conn = _connection_string(setting)
        try:
            return BlobServiceClient.from_connection_string(conn), TableServiceClient.from_connection_string(conn)
        except ValueError:
            raise _malformed(setting) from None
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


def _default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _blob_service(settings: Settings, credential: TokenCredential | None) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    if settings.azure_storage_connection_setting:
        setting = settings.azure_storage_connection_setting
        try:
            return BlobServiceClient.from_connection_string(_connection_string(setting))
        except ValueError:
            raise _malformed(setting) from None
    if not settings.azure_storage_account_url:
        raise InvalidInput(
            "pushing to az:// needs MODELPILOT_AZURE_STORAGE_ACCOUNT_URL "
            "(https://<account>.blob.core.windows.net) or MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING"
        )
    return BlobServiceClient(settings.azure_storage_account_url, credential=credential or _default_credential())


def caller_identity(settings: Settings, *, credential: TokenCredential | None = None) -> str:
    """Return ``entra:<oid>`` of the caller's credential; a storage connection string alone is a shared key."""
    from modelpilot.adapters.azure.identity import STORAGE_KEY_ACTOR, token_principal

    if credential is None and settings.azure_storage_connection_setting:
        return STORAGE_KEY_ACTOR
    return token_principal(credential or _default_credential())


def build_uploader(settings: Settings, *, credential: TokenCredential | None = None) -> PackageUploader:
    """Return the Blob Storage uploader of ``modelpilot push`` (it needs no table)."""
    from modelpilot.adapters.azure.upload import BlobPackageUploader

    return BlobPackageUploader(_blob_service(settings, credential))


def traffic_routers(settings: Settings, credential: TokenCredential) -> list[TrafficRouter]:
    """Return the Azure ML online endpoint routers of ``MODELPILOT_TRAFFIC_ROUTES`` (they need the workspace)."""
    from modelpilot.adapters.routes import SETTING, parse_routes

    routes = parse_routes(settings.traffic_routes, routers=frozenset({"azureml"}))
    if not routes:
        return []
    if not settings.azure_ml_workspace_id:
        raise InvalidInput(
            f"{SETTING} names Azure ML online endpoints: set MODELPILOT_AZURE_ML_WORKSPACE_ID to their workspace",
            setting="MODELPILOT_AZURE_ML_WORKSPACE_ID",
        )
    from modelpilot.adapters.azure.traffic import AzureMlEndpointRouter

    return [
        AzureMlEndpointRouter(
            route.model,
            route.environment,
            credential,
            settings.azure_ml_workspace_id,
            route.target["endpoint"],
            deployment=route.target.get("deployment", "v{version}"),
        )
        for route in routes
    ]


def build_adapters(settings: Settings, *, credential: TokenCredential | None = None) -> Adapters:
    """Return the adapters of the Azure backend for ``settings`` (``credential``: default, the managed identity)."""
    from modelpilot.adapters.azure.blob import BlobArtifactStore
    from modelpilot.adapters.azure.eventgrid import EventGridNotifier, EventGridPublisher
    from modelpilot.adapters.azure.idempotency import TableIdempotencyStore
    from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource
    from modelpilot.adapters.azure.registry import TableRegistry
    from modelpilot.adapters.azure.upload import BlobPackageUploader
    from modelpilot.adapters.log import LogNotifier, LogPublisher
    from modelpilot.adapters.prometheus import prometheus_sources
    from modelpilot.ports import EventPublisher, LifecycleSync, Notifier, SecretsProvider

    if credential is None and not settings.azure_storage_connection_setting:
        credential = _default_credential()
    blob, tables = storage_clients(settings, credential)
    cloud = credential or _default_credential()
    publisher: EventPublisher = LogPublisher()
    notifier: Notifier = LogNotifier(events_logged=True)  # the LogPublisher's line already holds each event
    if settings.azure_eventgrid_endpoint:
        from azure.eventgrid import EventGridPublisherClient

        client = EventGridPublisherClient(settings.azure_eventgrid_endpoint, cloud)
        publisher, notifier = EventGridPublisher(client), EventGridNotifier(client)
    secrets: SecretsProvider | None = None
    if settings.azure_keyvault_url:
        from azure.keyvault.secrets import SecretClient

        from modelpilot.adapters.azure.keyvault import KeyVaultSecrets

        secrets = KeyVaultSecrets(SecretClient(settings.azure_keyvault_url, cloud))
    # write-back of promotions, blocks and rollbacks as tags of Azure ML model versions (policy: azureml)
    lifecycle_sync: dict[str, LifecycleSync] = {}
    if settings.azure_ml_workspace_id:
        from modelpilot.adapters.azure.azureml_sync import AzureMlLifecycleSync

        lifecycle_sync["azureml"] = AzureMlLifecycleSync(cloud, settings.azure_ml_workspace_id)
    return Adapters(
        registry=TableRegistry(tables.get_table_client(settings.azure_registry_table)),
        artifacts=BlobArtifactStore(blob),
        publisher=publisher,
        notifier=notifier,
        idempotency=TableIdempotencyStore(tables.get_table_client(settings.azure_idempotency_table)),
        secrets=secrets,
        # Prometheus (MODELPILOT_PROMETHEUS_URL) with its credentials from Key Vault, cached by KeyVaultSecrets
        metrics_sources={
            "azure_monitor": AzureMonitorMetricsSource(cloud),
            **prometheus_sources(settings.prometheus_url, secret=settings.prometheus_secret, secrets=secrets),
        },
        uploader=BlobPackageUploader(blob),
        data_root=settings.data_root or f"az://{settings.azure_container}/monitoring",
        serving_root=settings.serving_root,
        policy_location=settings.policy,
        default_policy_location=f"az://{settings.azure_container}/{POLICY_NAME}",
        lifecycle_sync=lifecycle_sync,
        # canary splits routed to Azure ML online endpoints besides the serving manifest
        traffic_routers=traffic_routers(settings, cloud),
        # with the Durable fan-out on, a window above MODELPILOT_DRIFT_FANOUT_BYTES starts a drift_window
        # orchestration through the drift timer's Durable client binding (no client of its own)
        drift_fanout=(
            DurableFanOutStarter(min_bytes=settings.drift_fanout_bytes) if settings.azure_durable_drift else None
        ),
    )
