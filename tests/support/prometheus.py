"""A real Prometheus for the tests: backfilled with known series, on 127.0.0.1 and an ephemeral port.

The series are written as OpenMetrics text, turned into TSDB blocks with
``promtool tsdb create-blocks-from openmetrics`` in a temporary data directory,
and served by a ``prometheus`` process started on a free port. Missing binaries
fail the test with the command that installs them; nothing is skipped.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

INSTALL_HINT = "install the Debian package 'prometheus' (apt-get install prometheus), which brings promtool"


def binary(name: str) -> str:
    """Return the path of ``name`` or fail with how to install it."""
    import pytest

    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found on PATH: {INSTALL_HINT}", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def backfill(openmetrics: str, data_dir: Path) -> None:
    """Write ``openmetrics`` (ending with '# EOF') into TSDB blocks under ``data_dir``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    source = data_dir.parent / "series.om"
    source.write_text(openmetrics, encoding="utf-8")
    done = subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"promtool backfill failed: {done.stderr or done.stdout}")


class PrometheusServer:
    """A Prometheus process over a data directory; ``url`` once started."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> None:
        config = self.data_dir.parent / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n", encoding="utf-8")
        for _attempt in range(3):
            port = free_port()
            log = (self.data_dir.parent / "prometheus.log").open("wb")
            self.process = subprocess.Popen(
                [
                    binary("prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.data_dir}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=3650d",
                    "--query.lookback-delta=5m",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready(timeout):
                return
            self.stop()
        log_text = (self.data_dir.parent / "prometheus.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"Prometheus did not become ready; its log ends with:\n{log_text}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
                    if reply.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def series_count(self) -> int:
        with urllib.request.urlopen(f"{self.url}/api/v1/status/tsdb", timeout=5) as reply:
            return int(json.loads(reply.read())["data"]["headStats"]["numSeries"])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
