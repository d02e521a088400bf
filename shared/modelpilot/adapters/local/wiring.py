"""The local backend's adapters: everything under the home folder (SQLite databases, JSON Lines, files)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.adapters.local.events import JsonlEventLog, JsonlNotifier
from modelpilot.adapters.local.idempotency import SqliteIdempotencyStore
from modelpilot.adapters.local.registry import SqliteRegistry, sqlite_corruption
from modelpilot.adapters.local.secrets import FileSecrets
from modelpilot.domain.checkpoint import CHECKPOINT_SECRET
from modelpilot.exceptions import InvalidInput
from modelpilot.policy.loader import POLICY_NAME
from modelpilot.ports import Adapters

if TYPE_CHECKING:
    from modelpilot.config import Settings
    from modelpilot.ports import MetricsSource, PackageUploader

__all__ = ["build_adapters", "build_uploader", "caller_identity"]


def _metrics_sources(settings: Settings, store: MetricsSource) -> dict[str, MetricsSource]:
    """The local telemetry store, and Prometheus when ``MODELPILOT_PROMETHEUS_URL`` is set."""
    sources: dict[str, MetricsSource] = {"local": store}
    if settings.prometheus_url:
        from modelpilot.adapters.prometheus import PrometheusMetricsSource

        sources["prometheus"] = PrometheusMetricsSource(settings.prometheus_url)
    return sources


def caller_identity(settings: Settings) -> None:
    """Return None: a local home has no credentials to ask; the CLI's ``--actor`` stands."""
    return None


def build_uploader(settings: Settings) -> PackageUploader:
    """Return the folder uploader of ``modelpilot push`` to a local folder."""
    from modelpilot.adapters.local.upload import FolderPackageUploader

    return FolderPackageUploader()


def build_adapters(settings: Settings) -> Adapters:
    """Return adapters backed by SQLite and folders under ``settings.home`` (created when missing)."""
    home = Path(settings.home)
    try:
        home.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise InvalidInput(f"home {home} is not a folder: pass --home DIR or set MODELPILOT_HOME") from None
    from modelpilot.adapters.local.telemetry_store import SqliteTelemetryStore

    # a database file that is not one ends the command with one line (StoreCorrupt), not a traceback
    telemetry = SqliteTelemetryStore(home / "telemetry.db")  # opened on first use, not here
    with sqlite_corruption(home / "idempotency.db"):
        idempotency = SqliteIdempotencyStore(home / "idempotency.db")
    return Adapters(
        registry=SqliteRegistry(home / "registry.db"),
        artifacts=FolderArtifactStore(),
        publisher=JsonlEventLog(home / "events.jsonl"),
        notifier=JsonlNotifier(home / "notifications.jsonl"),
        idempotency=idempotency,
        secrets=FileSecrets(home / "secrets", generate=[CHECKPOINT_SECRET]),
        metrics_sources=_metrics_sources(settings, telemetry),
        telemetry_ingest=telemetry,
        uploader=build_uploader(settings),
        data_root=settings.data_root or str(home / "data"),
        serving_root=settings.serving_root or settings.data_root or str(home / "data"),
        policy_location=settings.policy,
        default_policy_location=str(home / POLICY_NAME),
    )
