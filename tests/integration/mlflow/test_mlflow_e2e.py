"""End to end against a real ``mlflow server``: its own webhooks drive ModelPilot, and ModelPilot writes back.

What this proves: a model logged with metrics and registered in MLflow is registered by ModelPilot from the
``model_version.created`` webhook MLflow itself signs and sends (artifacts copied with digests that match the
files MLflow serves, the run's metrics, params and lineage); setting a mapped alias promotes it through the gates;
a regression is blocked and visible in MLflow (tag, alias set back); a rollback in ModelPilot moves the MLflow alias
back; the alias writes ModelPilot makes come back as webhooks and are ignored (no second promotion). What it
cannot prove: behaviour of MLflow versions other than the installed one, or of a server with authentication.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from modelpilot.domain.commands import RollbackModel

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _log_model(url: str, name: str, auc: float) -> str:
    """Log a tiny pyfunc model with metrics and params in a run, registered as ``name``; return its version."""
    import mlflow

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.set_tracking_uri(url)
    with mlflow.start_run():
        mlflow.log_metric("auc", auc)
        mlflow.log_param("C", "0.5")
        info = mlflow.pyfunc.log_model(
            name="model", python_model=Echo(), registered_model_name=name, pip_requirements=["numpy"]
        )
    return str(info.registered_model_version)


def _version_of(bus, model: str, mlflow_version: str):
    return bus.services.registry.find_version(model, external_id=f"{model}/{mlflow_version}")


def _tags(client, name: str, version: str, key: str) -> dict[str, str] | None:
    tags = client.get_model_version(name, version).tags
    return tags if key in tags else None


def _prod(bus, model: str, env: str = "prod"):
    alias = bus.services.registry.get_alias(model, env)
    return alias.version if alias else None


def test_mlflow_drives_modelpilot_and_sees_its_decisions(receiver, mlflow_server, tmp_path):
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    name = f"churn-{uuid.uuid4().hex[:6]}"
    client = MlflowClient(mlflow_server.url)
    bus = receiver.bus

    # v1: logged with metrics, registered in MLflow → registered by ModelPilot from the webhook
    assert _log_model(mlflow_server.url, name, 0.80) == "1"
    v1 = receiver.wait("v1 registered", lambda: _version_of(bus, name, "1"))
    assert v1.source == "mlflow" and v1.manifest.metrics == {"auc": 0.80}
    run_id = client.get_model_version(name, "1").run_id
    assert v1.manifest.lineage.run_id == run_id
    assert v1.manifest.lineage.run_url.endswith(f"/runs/{run_id}")
    # the digests are those of the files MLflow serves, read independently through MLflow's own client
    local = Path(download_artifacts(artifact_uri=f"models:/{name}/1", dst_path=str(tmp_path / "v1")))
    served = {
        str(p.relative_to(local)): hashlib.sha256(p.read_bytes()).hexdigest() for p in local.rglob("*") if p.is_file()
    }
    served.pop("registered_model_meta", None)  # written by MLflow's client as it downloads a models:/ URI
    copied = {a.path: a.sha256 for a in v1.manifest.artifacts if a.path != "mlflow-run.json"}
    assert copied == served and "MLmodel" in copied
    run_record = json.loads(
        bus.services.artifacts.read_bytes(bus.services.artifacts.join(v1.package_uri, "mlflow-run.json"))
    )
    assert run_record["params"] == {"C": "0.5"} and run_record["metrics"] == {"auc": 0.80}

    # a person sets the aliases in MLflow: ModelPilot promotes through the gates and tags the versions
    client.set_registered_model_alias(name, "challenger", "1")
    receiver.wait("v1 in staging", lambda: _prod(bus, name, "staging") == 1)
    client.set_registered_model_alias(name, "champion", "1")
    receiver.wait("v1 in prod", lambda: _prod(bus, name) == 1)
    # the write-back follows the commit: wait for it, as a person refreshing MLflow's page would
    tags = receiver.wait("v1's tags", lambda: _tags(client, name, "1", "modelpilot.prod.report"))
    assert tags["modelpilot.prod"] == "promoted"
    gates = json.loads(tags["modelpilot.prod.report"])["gates"]
    assert gates["order"] == "passed" and gates["no_regression:auc"] == "skipped"  # nothing in prod to compare with

    # v2 is better: staging then prod
    assert _log_model(mlflow_server.url, name, 0.85) == "2"
    receiver.wait("v2 registered", lambda: _version_of(bus, name, "2"))
    client.set_registered_model_alias(name, "challenger", "2")
    receiver.wait("v2 in staging", lambda: _prod(bus, name, "staging") == 2)
    client.set_registered_model_alias(name, "champion", "2")
    receiver.wait("v2 in prod", lambda: _prod(bus, name) == 2)
    receiver.wait("v1 replaced", lambda: _tags(client, name, "1", "modelpilot.prod")["modelpilot.prod"] == "replaced")

    # v3 regresses: blocked at staging, visible in MLflow, and the alias goes back to what staging runs
    assert _log_model(mlflow_server.url, name, 0.70) == "3"
    receiver.wait("v3 registered", lambda: _version_of(bus, name, "3"))
    client.set_registered_model_alias(name, "challenger", "3")
    tags = receiver.wait("v3 blocked", lambda: _tags(client, name, "3", "modelpilot.staging.report"))
    assert tags["modelpilot.staging"] == "blocked"
    report = json.loads(tags["modelpilot.staging.report"])
    assert report["failed_gates"] == ["no_regression:auc"] and "auc" in report["reasons"][0]
    receiver.wait("challenger back on v2", lambda: client.get_model_version_by_alias(name, "challenger").version == "2")
    assert _prod(bus, name, "staging") == 2

    # an operator rolls prod back in ModelPilot: the MLflow alias follows, both versions say why
    outcome = bus.handle(RollbackModel(model=name, environment="prod", actor="user:ops", reason="error spike"))
    assert outcome.status == "rolled_back" and outcome.data["version"] == 1
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version(name, "2").tags["modelpilot.prod"] == "rolled_back"
    assert client.get_model_version(name, "1").tags["modelpilot.prod"] == "restored"

    # no loop: the two alias writes ModelPilot made (block, rollback) come back as webhooks and are ignored
    def echoes():
        return {
            (r["alias"], r["mlflow_version"]) for r in receiver.replies("ignored") if "itself" in r.get("message", "")
        }

    receiver.wait("the echoes of ModelPilot's own alias writes", lambda: len(echoes()) == 2)
    assert echoes() == {("challenger", "2"), ("champion", "1")}
    history = [(c.action, c.to_version) for c in bus.services.registry.alias_history(name, "prod")]
    assert history == [("promote", 1), ("promote", 2), ("rollback", 1)]
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert [r["status"] for r in receiver.replies() if r.get("status") == "failed"] == []


def _register_files(url: str, name: str, tmp_path, auc: float) -> str:
    """Create a version from run artifacts with MLflow's client (no pyfunc): quicker, same webhooks."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(url)
    mlflow.set_tracking_uri(url)
    folder = tmp_path / f"model-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    with mlflow.start_run() as run:
        mlflow.log_metric("auc", auc)
        mlflow.log_artifacts(str(folder), artifact_path="model")
    try:
        client.get_registered_model(name)
    except Exception:
        client.create_registered_model(name)
    return str(client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id).version)


def _post(url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    wanted = {k: v for k, v in headers.items() if k.lower().startswith("x-mlflow-") or k.lower() == "content-type"}
    request = urllib.request.Request(url, data=body, headers=wanted, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_real_delivery_replayed_or_altered_changes_nothing(receiver, mlflow_server, tmp_path):
    name = f"replay-{uuid.uuid4().hex[:6]}"
    _register_files(mlflow_server.url, name, tmp_path, 0.8)
    receiver.wait("v1 registered", lambda: _version_of(receiver.bus, name, "1"))
    headers, body, status, _reply = receiver.wait(
        "the delivery", lambda: next((d for d in receiver.deliveries if d[3].get("status") == "registered"), None)
    )
    assert status == 200 and headers["X-MLflow-Signature"].startswith("v1,")

    again = _post(receiver.url, headers, body)
    assert again[0] == 200 and again[1]["duplicate"] is True
    altered = _post(receiver.url, headers, body.replace(b'"version": "1"', b'"version": "2"'))
    assert altered[0] == 401
    assert [v.version for v in receiver.bus.services.registry.list_versions(name)] == [1]


APPROVAL_POLICY = """
version: 1
environments: [prod]
defaults:
  environments:
    prod: {approvals: 1, approvers: ["mlflow:**"]}
mlflow:
  aliases: {prod: champion}
  approval_tag_prefix: "approve."
"""


@pytest.mark.parametrize("receiver", [APPROVAL_POLICY], indirect=True)
def test_an_approval_tag_in_mlflow_lets_a_blocked_promotion_through(receiver, mlflow_server, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.url)
    bus = receiver.bus
    name = f"approve-{uuid.uuid4().hex[:6]}"
    _register_files(mlflow_server.url, name, tmp_path, 0.8)
    receiver.wait("v1 registered", lambda: _version_of(bus, name, "1"))

    client.set_registered_model_alias(name, "champion", "1")
    tags = receiver.wait("v1 blocked", lambda: _tags(client, name, "1", "modelpilot.prod.report"))
    assert tags["modelpilot.prod"] == "blocked"
    assert json.loads(tags["modelpilot.prod.report"])["failed_gates"] == ["approvals"]
    receiver.wait("the alias taken back", lambda: "champion" not in client.get_registered_model(name).aliases)

    client.set_model_version_tag(name, "1", "approve.prod", "alice@example.com")
    receiver.wait("the approval", lambda: bus.services.registry.list_approvals(name, 1, "prod"))
    assert bus.services.registry.list_approvals(name, 1, "prod")[0].approver == "mlflow:alice@example.com"
    client.set_registered_model_alias(name, "champion", "1")
    receiver.wait("v1 in prod", lambda: _prod(bus, name) == 1)
