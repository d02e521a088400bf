"""The Lambda handler ``mlflow_webhook`` as API Gateway (HTTP API, payload 2.0) calls it, on moto: the signing secret
from Secrets Manager, replays refused on the DynamoDB idempotency table, packages into S3. MLflow is the in-memory
registry here (its REST side has its own suites; the stack story uses a real mlflow server). What this proves:
the body as API Gateway hands it over (text or base64) is what is verified, a transient failure is a 503 MLflow
retries, and the secret never reaches the logs."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.exceptions import TransientError
from modelpilot.ports import MlflowRun
from modelpilot.testing import InMemoryMlflowRegistry
from tests.support.aws_events import LambdaContext, handler, handler_stack, http_request, load

webhook = handler("mlflow_webhook")
SECRET = "whsec-" + uuid.uuid4().hex


class _Flaky(InMemoryMlflowRegistry):
    outage = 0

    def model_version(self, name: str, version: str):  # type: ignore[no-untyped-def]
        if self.outage:
            self.outage -= 1
            raise TransientError("cannot reach MLflow")
        return super().model_version(name, version)


@pytest.fixture
def mlflow(request, monkeypatch):
    stack = next(handler_stack(request, monkeypatch))
    name = f"mlflow-webhook-{uuid.uuid4().hex[:8]}"  # the moto server is shared: a secret of this test's own
    stack.client("secretsmanager").create_secret(Name=name, SecretString=SECRET)
    monkeypatch.setenv("MODELPILOT_MLFLOW_WEBHOOK_SECRET", name)
    registry = _Flaky()
    run = MlflowRun("r1", "0", "alice", "FINISHED", metrics={"auc": 0.9})
    registry.add_version("churn", "1", {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x80\x04" * 64}, run=run)
    get_bus().services.mlflow = registry
    return stack, registry


def _delivery(secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    payload = load("mlflow_webhook_model_version_created.json")
    payload["data"].update(name="churn", version="1", run_id="r1")
    body = json.dumps(payload).encode()
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers = {
        "content-type": "application/json",
        "x-mlflow-delivery-id": delivery,  # API Gateway lower-cases header names
        "x-mlflow-timestamp": stamp,
        "x-mlflow-signature": _generate_hmac_signature(secret, delivery, stamp, body.decode()),
    }
    return body, headers


def _call(body: bytes, headers: dict[str, str], *, encode: bool = False) -> tuple[int, dict]:
    event = http_request("POST", "/mlflow/webhook", None, user_arn=None)
    del event["requestContext"]["authorizer"]
    event["headers"] = headers
    event["body"] = base64.b64encode(body).decode() if encode else body.decode()
    event["isBase64Encoded"] = encode
    reply = webhook(event, LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def test_a_base64_body_is_verified_as_the_bytes_mlflow_signed_and_a_replay_changes_nothing(mlflow, caplog):
    stack, _ = mlflow
    body, headers = _delivery()
    with caplog.at_level(logging.DEBUG, logger="modelpilot"):
        status, reply = _call(body, headers, encode=True)
    assert (status, reply["status"]) == (200, "registered"), reply
    assert SECRET not in caplog.text
    version = get_bus().services.registry.get_version("churn", 1)
    assert version.external_id == "churn/1" and version.package_uri.startswith(
        f"s3://{stack.bucket}/monitoring/mlflow/"
    )
    again = _call(body, headers)
    assert again[0] == 200 and again[1]["duplicate"] is True
    assert len(get_bus().services.registry.list_versions("churn")) == 1


def test_a_wrong_secret_or_a_broken_encoding_changes_nothing(mlflow):
    body, headers = _delivery(secret="not-" + SECRET)
    assert _call(body, headers)[0] == 401
    _, good = _delivery()
    event = http_request("POST", "/mlflow/webhook", None, user_arn=None)
    event.update(headers=good, body="%%% not base64", isBase64Encoded=True)
    reply = webhook(event, LambdaContext())
    assert reply["statusCode"] == 400 and "base64" in json.loads(reply["body"])["message"]
    assert get_bus().services.registry.list_versions("churn") == []


def test_mlflow_unavailable_is_a_503_that_mlflows_retry_gets_through(mlflow):
    _, registry = mlflow
    registry.outage = 1
    body, headers = _delivery()
    status, reply = _call(body, headers)
    assert status == 503 and reply["error"] == "TransientError", reply
    assert get_bus().services.registry.list_versions("churn") == []
    assert _call(body, headers)[1]["status"] == "registered"  # MLflow's retry: the same delivery id
