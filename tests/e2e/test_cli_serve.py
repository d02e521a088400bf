"""``modelpilot serve`` as a user runs it: a process on 127.0.0.1 that answers /health and refuses unsigned webhooks.

What this proves: the command starts, prints its URL, reads the webhook secret from ``<home>/secrets`` (owner-only)
and answers a correctly signed delivery, 401 for an unsigned one, and stops on SIGINT with exit code 0. What it
cannot prove: MLflow's side (tests/integration/mlflow).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

pytestmark = pytest.mark.slow


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_answers_health_and_checks_signatures(tmp_path):
    from mlflow.webhooks.delivery import _generate_hmac_signature

    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True)
    secret = uuid.uuid4().hex
    (home / "secrets" / "modelpilot-mlflow-webhook").write_text(secret + "\n")
    (home / "secrets" / "modelpilot-mlflow-webhook").chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPILOT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "modelpilot.cli", "serve", "--port", "0", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        assert "MLflow webhooks on http://127.0.0.1:" in line, process.stderr.read()
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        base = url.rsplit("/mlflow/webhook", 1)[0]
        with urllib.request.urlopen(f"{base}/health", timeout=10) as reply:
            assert json.loads(reply.read()) == {"status": "ok"}

        body = json.dumps({"entity": "registered_model", "action": "created", "timestamp": "", "data": {}}).encode()
        assert _post(url, body, {})[0] == 401
        delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
        signed = {
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": stamp,
            "X-MLflow-Signature": _generate_hmac_signature(secret, delivery, stamp, body.decode()),
        }
        assert _post(url, body, signed) == (
            200,
            {
                "status": "ignored",
                "source": f"mlflow:{delivery}",
                "message": "MLflow event registered_model.created is not one ModelPilot acts on",
            },
        )
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        assert code == 0, process.stderr.read()
