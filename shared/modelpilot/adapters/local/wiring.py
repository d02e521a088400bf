"""Wires the local backend: everything under the home folder."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.adapters.local.events import JsonlEventLog, JsonlNotifier
from modelpilot.adapters.local.idempotency import SqliteIdempotencyStore
from modelpilot.adapters.local.registry import SqliteRegistry
from modelpilot.policy import default_policy, load_policy
from modelpilot.service.messagebus import Services

if TYPE_CHECKING:
    from modelpilot.config import Settings
    from modelpilot.policy import Policy

__all__ = ["build_services", "policy_loader"]


def policy_loader(settings: Settings) -> functools.partial[Policy] | Any:
    """Return a cached loader: ``settings.policy``, else ``<home>/modelpilot.yaml``, else the default."""
    home = Path(settings.home)

    @functools.cache
    def load() -> Policy:
        if settings.policy:
            return load_policy(settings.policy)
        candidate = home / "modelpilot.yaml"
        return load_policy(candidate) if candidate.exists() else default_policy()

    return load


def _metrics_sources(settings: Settings, home: Path) -> dict[str, Any]:
    """The local telemetry store, and Prometheus when ``MODELPILOT_PROMETHEUS_URL`` is set."""
    from modelpilot.adapters.local.telemetry_store import SqliteTelemetryStore

    sources: dict[str, Any] = {"local": SqliteTelemetryStore(home / "telemetry.db")}
    if settings.prometheus_url:
        from modelpilot.adapters.prometheus import PrometheusMetricsSource

        sources["prometheus"] = PrometheusMetricsSource(settings.prometheus_url)
    return sources


def build_services(settings: Settings, **overrides: Any) -> Services:
    """Return services backed by SQLite and folders under ``settings.home``."""
    home = Path(settings.home)
    home.mkdir(parents=True, exist_ok=True)
    parts: dict[str, Any] = {
        "registry": SqliteRegistry(home / "registry.db"),
        "artifacts": FolderArtifactStore(),
        "publisher": JsonlEventLog(home / "events.jsonl"),
        "notifier": JsonlNotifier(home / "notifications.jsonl"),
        "policy_loader": policy_loader(settings),
        "idempotency": SqliteIdempotencyStore(home / "idempotency.db"),
        "data_root": settings.data_root or str(home / "data"),
        "metrics_sources": _metrics_sources(settings, home),
    }
    parts.update(overrides)
    return Services(**parts)
