"""Azurite for the Azure tests: one emulator per test process, on ephemeral ports.

Azurite (npm ``azurite``, installed by ``make tools`` into ``.tools/``) is started
on first use with ``--inMemoryPersistence`` on 127.0.0.1 with port 0 for every
service; the ports it really listens on are read from its start-up lines. It is
stopped at the end of the session. When Azurite is not installed the tests that
need it FAIL with a message saying how to install it.

The factories ``make_registry``, ``make_artifact_store`` and
``make_idempotency_store`` serve the contract suites in ``tests/contract``; every
call gets its own table or container, so tests never see each other's data.
"""

from __future__ import annotations

import atexit
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Azurite's documented development account: a public, well-known key, not a secret.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at http://127\.0\.0\.1:(\d+)")


@dataclass
class Azurite:
    """A running emulator: its process and endpoints."""

    process: subprocess.Popen[str]
    blob_port: int
    table_port: int
    workdir: str

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def table_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.table_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};TableEndpoint={self.table_endpoint};"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def azurite_binary() -> str:
    """Return the azurite executable: ``.tools/node_modules/.bin/azurite`` or one on PATH."""
    local = ROOT / ".tools" / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found is None:
        pytest.fail(
            "Azurite is not installed: run `make tools` (npm install azurite@3.35.0 into .tools/) "
            "or put `azurite` on PATH",
            pytrace=False,
        )
    return found


def start_azurite(timeout: float = 60.0) -> Azurite:
    """Start Azurite on 127.0.0.1 with ephemeral ports and wait until blob and table answer."""
    workdir = tempfile.mkdtemp(prefix="azurite-")
    process = subprocess.Popen(
        [
            azurite_binary(),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--inMemoryPersistence",
            "--extentMemoryLimit",
            "512",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            "0",
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=workdir,
    )
    ports: dict[str, int] = {}
    lines: list[str] = []
    deadline = time.monotonic() + timeout

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                ports[match.group(1)] = int(match.group(2))

    threading.Thread(target=read, daemon=True).start()
    while not {"Blob", "Table"} <= ports.keys():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            shutil.rmtree(workdir, ignore_errors=True)
            pytest.fail("Azurite did not start on 127.0.0.1:\n" + "\n".join(lines[-20:]), pytrace=False)
        time.sleep(0.05)
    return Azurite(process, ports["Blob"], ports["Table"], workdir)


_lock = threading.Lock()
_running: Azurite | None = None


def azurite(request: pytest.FixtureRequest) -> Azurite:
    """Return this test process's Azurite, starting it on first use and stopping it when the session ends."""
    global _running
    with _lock:
        if _running is None or _running.process.poll() is not None:
            _running = start_azurite()
            request.config.add_cleanup(_stop)
            atexit.register(_stop)  # also when the session is torn down abnormally
        return _running


def _stop() -> None:
    global _running
    with _lock:
        if _running is not None:
            _running.stop()
            _running = None


def unique(prefix: str) -> str:
    """Return a fresh table or container name (letters and digits only)."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def table_client(request: pytest.FixtureRequest, prefix: str = "t") -> Any:
    """Return a ``TableClient`` for a new, empty table."""
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(azurite(request).connection_string)
    return service.create_table(unique(prefix))


def blob_service(request: pytest.FixtureRequest) -> Any:
    """Return a ``BlobServiceClient`` for this process's Azurite."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite(request).connection_string)


def new_container(request: pytest.FixtureRequest, prefix: str = "c") -> str:
    """Create an empty container and return its name."""
    name = unique(prefix)
    blob_service(request).create_container(name)
    return name


def make_registry(request: pytest.FixtureRequest) -> Any:
    from modelpilot.adapters.azure.registry import TableRegistry

    return TableRegistry(table_client(request, "reg"))


def make_artifact_store(request: pytest.FixtureRequest) -> tuple[Any, str]:
    from modelpilot.adapters.azure.blob import BlobArtifactStore

    container = new_container(request, "art")
    return BlobArtifactStore(blob_service(request)), f"az://{container}/base"


def make_idempotency_store(request: pytest.FixtureRequest) -> Any:
    from modelpilot.adapters.azure.idempotency import TableIdempotencyStore

    return TableIdempotencyStore(table_client(request, "idem"))


def connection_env(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, name: str = "MODELPILOT_TEST_STORAGE"
) -> str:
    """Put Azurite's connection string in env var ``name`` (as an app setting would) and return ``name``."""
    monkeypatch.setenv(name, azurite(request).connection_string)
    return name


__all__ = [
    "Azurite",
    "azurite",
    "blob_service",
    "connection_env",
    "make_artifact_store",
    "make_idempotency_store",
    "make_registry",
    "new_container",
    "start_azurite",
    "table_client",
    "unique",
]
