"""A ModelPilot webhook receiver (``modelpilot serve``) per test, on the session's real ``mlflow server``
(the ``mlflow_server`` fixture of tests/conftest.py).

The receiver is the local backend in a temporary home: its policy file, its webhook secret in
``<home>/secrets/`` (mode 600, read through the SecretsProvider port) and the server's URL as
``mlflow_tracking_uri``. Every test uses its own registered model names, so the session's one server is shared.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

SECRET_NAME = "modelpilot-mlflow-webhook"
EVENTS = ["model_version.created", "model_version_alias.created", "model_version_tag.set"]


@dataclass
class Receiver:
    """A running ``modelpilot serve`` and what it answered."""

    bus: Any
    url: str
    secret: str
    home: Any
    server: Any
    mlflow: Any
    deliveries: list[tuple[dict[str, str], bytes, int, dict[str, Any]]] = field(default_factory=list)

    def wait(self, what: str, predicate, timeout: float = 60.0) -> Any:
        """Poll until ``predicate()`` is truthy (MLflow delivers webhooks asynchronously); fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        replies = [(status, reply.get("status"), reply.get("message")) for _h, _b, status, reply in self.deliveries]
        pytest.fail(f"timed out waiting for {what}; the receiver answered: {replies}\n{self.mlflow.log()[-2000:]}")

    def replies(self, status: str | None = None) -> list[dict[str, Any]]:
        return [reply for _h, _b, _s, reply in self.deliveries if status is None or reply.get("status") == status]


def write_policy(home, text: str) -> None:
    (home / "modelpilot.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def receiver(tmp_path, mlflow_server, request):
    from mlflow import MlflowClient

    from modelpilot.bootstrap import bootstrap
    from modelpilot.cli.serve import webhook_server
    from modelpilot.config import Settings

    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True)
    secret = uuid.uuid4().hex
    (home / "secrets" / SECRET_NAME).write_text(secret + "\n")
    (home / "secrets" / SECRET_NAME).chmod(0o600)
    policy = getattr(request, "param", None) or POLICY
    write_policy(home, policy)
    bus = bootstrap(Settings(home=str(home), mlflow_tracking_uri=mlflow_server.url))
    seen: list = []
    server = webhook_server(bus, host="127.0.0.1", port=0, secret_name=SECRET_NAME, observe=lambda *a: seen.append(a))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/mlflow/webhook"
    client = MlflowClient(tracking_uri=mlflow_server.url)
    hook = client.create_webhook(name=f"modelpilot-{uuid.uuid4().hex[:8]}", url=url, events=EVENTS, secret=secret)
    try:
        yield Receiver(bus, url, secret, home, server, mlflow_server, seen)
    finally:
        client.delete_webhook(hook.webhook_id)
        server.shutdown()
        server.server_close()


POLICY = """
version: 1
environments: [staging, prod]
defaults:
  environments:
    staging:
      thresholds: ["auc >= 0.5"]
      no_regression: [{metric: auc, greater_is_better: true}]
    prod:
      no_regression: [{metric: auc, greater_is_better: true}]
mlflow:
  aliases: {staging: challenger, prod: champion}
  approval_tag_prefix: "approve."
"""
