"""The Azure HTTP trigger ``mlflow_webhook``: the same edge as ``modelpilot serve``, on the Azure adapters.

The app runs as the worker calls it, on Azurite (Blob Storage for the copied artifacts, Table Storage for the
registry and the idempotency store). MLflow itself is the in-memory registry and the secret comes from an
in-memory secret store (no Key Vault emulator exists; the Key Vault adapter has its own contract suite); the
signature is made by MLflow's own signing code. What this proves: the route, its status codes, and registration
with digests into Blob Storage through the Azure adapters. What it cannot prove: the host's function-key check.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest

from modelpilot.ports import MlflowRun
from modelpilot.testing import InMemoryMlflowRegistry, InMemorySecrets
from tests.support.azure_functions import AzureApp, http_request, user_function

pytestmark = pytest.mark.integration

SECRET = "azure-" + uuid.uuid4().hex
POLICY = "version: 1\nenvironments: [prod]\nmlflow:\n  aliases: {prod: champion}\n"


def _signed(body: bytes, *, secret: str = SECRET) -> dict[str, str]:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery, stamp, body.decode()),
    }


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    azure = AzureApp(request, monkeypatch, tmp_path, POLICY)
    mlflow = InMemoryMlflowRegistry()
    run = MlflowRun("r1", "0", "alice", "FINISHED", metrics={"auc": 0.9})
    mlflow.add_version("churn", "1", {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x80\x04" * 100}, run=run)
    azure.bus.services.mlflow = mlflow
    azure.bus.services.secrets = InMemorySecrets({"modelpilot-mlflow-webhook": SECRET})
    yield azure, mlflow
    azure.close()


def _post(body: bytes, headers: dict[str, str]):
    reply = user_function("mlflow_webhook")(http_request("POST", "mlflow/webhook", {}, body=body, headers=headers))
    return reply.status_code, json.loads(reply.get_body())


def test_a_signed_delivery_registers_into_blob_storage_and_the_alias_promotes(app):
    azure, mlflow = app
    created = json.dumps(
        {
            "entity": "model_version",
            "action": "created",
            "timestamp": "",
            "data": {
                "name": "churn",
                "version": "1",
                "source": "models:/m-1",
                "run_id": None,
                "tags": {},
                "description": None,
            },
        }
    ).encode()
    status, reply = _post(created, _signed(created))
    assert (status, reply["status"]) == (200, "registered")
    version = azure.registry.get_version("churn", 1)
    assert version.package_uri.startswith("az://")
    digests = {a.path: a.sha256 for a in version.manifest.artifacts}
    assert digests["model.pkl"] == hashlib.sha256(b"\x80\x04" * 100).hexdigest()

    mlflow.aliases[("churn", "champion")] = "1"
    alias = json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "",
            "data": {"name": "churn", "alias": "champion", "version": "1"},
        }
    ).encode()
    headers = _signed(alias)
    status, reply = _post(alias, headers)
    assert (status, reply["status"]) == (200, "promoted")
    assert mlflow.tags[("churn", "1")]["modelpilot.prod"] == "promoted"
    status, reply = _post(alias, headers)  # the same delivery again: nothing changes
    assert status == 200 and reply["duplicate"] is True
    assert len(azure.registry.alias_history("churn", "prod")) == 1


def test_an_unsigned_or_altered_delivery_is_refused_with_401(app):
    azure, _ = app
    body = (
        b'{"entity": "model_version", "action": "created", "timestamp": "", "data": {"name": "churn", "version": "1"}}'
    )
    assert _post(body, {})[0] == 401
    assert _post(body.replace(b'"1"', b'"2"'), _signed(body))[0] == 401
    assert _post(body, _signed(body, secret="guess"))[0] == 401
    assert azure.registry.list_models() == []
