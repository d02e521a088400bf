"""A real MLflow tracking server for the tests: SQLite backend, artifact proxy, 127.0.0.1, an ephemeral port.

``mlflow server`` is started as a subprocess of the interpreter running the tests (``python -m mlflow``), with
the settings MLflow 3.x webhooks need to reach a receiver on 127.0.0.1: ``MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true``
and ``MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https`` (MLflow's defaults refuse both, rightly, in production), and
``MLFLOW_WEBHOOK_CACHE_TTL=0`` so that a webhook created by a test sees the very next event. The SQL store is
required: MLflow's file store sends no webhooks. A missing ``mlflow`` package fails the test (it is in the dev
extra); nothing is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.prometheus import free_port

INSTALL_HINT = "install the dev extra (pip install -e '.[dev]'), which brings mlflow"

#: the client side of the tests: no usage telemetry sent anywhere (nothing may leave the host)
CLIENT_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def require_mlflow() -> None:
    """Fail (never skip) when the mlflow package is not installed."""
    import pytest

    if importlib.util.find_spec("mlflow") is None:
        pytest.fail(f"the mlflow package is not installed: {INSTALL_HINT}", pytrace=False)


class MlflowServer:
    """An ``mlflow server`` process over a folder; ``url`` once started."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 120.0) -> None:
        require_mlflow()
        from cryptography.fernet import Fernet

        self.folder.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            **CLIENT_ENV,
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_CACHE_TTL": "0",
            "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            # the server's job runner (GenAI scorers) is not needed and costs seconds of start-up
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        for _attempt in range(3):
            port = free_port()
            log = (self.folder / "mlflow.log").open("wb")
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    "--backend-store-uri",
                    f"sqlite:///{self.folder / 'mlflow.db'}",
                    "--artifacts-destination",
                    str(self.folder / "artifacts"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.folder,
            )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready(timeout):
                return
            self.stop()
        log_text = (self.folder / "mlflow.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"mlflow server did not become ready; its log ends with:\n{log_text}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return True
            except OSError:
                time.sleep(0.3)
        return False

    def log(self) -> str:
        return (self.folder / "mlflow.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def mlflow_version() -> str:
    """The installed MLflow's version (reported by the tests and the benchmark)."""
    from importlib.metadata import version

    return version("mlflow")
