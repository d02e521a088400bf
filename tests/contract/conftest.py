"""Fixtures that yield every implementation of a port, for the contract suites.

Each backend's factory lives beside the servers it needs: ``tests/support/aws.py``
(moto server) and ``tests/support/azure.py`` (Azurite); the publishers and
notifiers, with a way to read back what they delivered, in
``tests/support/outbound.py``. A backend whose server cannot start fails its
tests; nothing is skipped silently.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.adapters.local.idempotency import SqliteIdempotencyStore
from modelpilot.adapters.local.registry import SqliteRegistry
from modelpilot.testing import InMemoryArtifactStore, InMemoryIdempotencyStore, InMemoryRegistry
from tests.support import outbound

REGISTRIES = ["fake", "sqlite", "dynamodb", "azure_table"]
ARTIFACT_STORES = ["fake", "folder", "s3", "azure_blob"]
IDEMPOTENCY_STORES = ["fake", "sqlite", "dynamodb", "azure_table"]


def _cloud(kind: str, name: str, request: pytest.FixtureRequest) -> Any:
    module = importlib.import_module(f"tests.support.{kind}")
    return getattr(module, name)(request)


@pytest.fixture(params=REGISTRIES)
def registry(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "fake":
        return InMemoryRegistry()
    if request.param == "sqlite":
        return SqliteRegistry(tmp_path / "registry.db")
    if request.param == "dynamodb":
        return _cloud("aws", "make_registry", request)
    return _cloud("azure", "make_registry", request)


@pytest.fixture(params=ARTIFACT_STORES)
def artifact_store(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[Any, str]:
    """Yield ``(store, base_uri)``: a store and an empty prefix to write under."""
    if request.param == "fake":
        return InMemoryArtifactStore(), "mem://bucket/base"
    if request.param == "folder":
        return FolderArtifactStore(), str(tmp_path / "store")
    if request.param == "s3":
        return _cloud("aws", "make_artifact_store", request)
    return _cloud("azure", "make_artifact_store", request)


@pytest.fixture(params=IDEMPOTENCY_STORES)
def idempotency_store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    if request.param == "fake":
        return InMemoryIdempotencyStore()
    if request.param == "sqlite":
        return SqliteIdempotencyStore(tmp_path / "idem.db")
    if request.param == "dynamodb":
        return _cloud("aws", "make_idempotency_store", request)
    return _cloud("azure", "make_idempotency_store", request)


@pytest.fixture(params=outbound.PUBLISHERS)
def publisher_case(request: pytest.FixtureRequest, tmp_path: Any) -> outbound.PublisherCase:
    """An EventPublisher and what reached its consumer."""
    return outbound.publisher_case(request.param, request, tmp_path)


@pytest.fixture(params=outbound.NOTIFIERS)
def notifier_case(request: pytest.FixtureRequest, tmp_path: Any) -> outbound.NotifierCase:
    """A Notifier and what reached its readers."""
    return outbound.notifier_case(request.param, request, tmp_path)
