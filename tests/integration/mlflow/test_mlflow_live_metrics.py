"""No-regression gates on live MLflow metrics against a real ``mlflow server``: two runs logged with metrics, two
versions registered (by MLflow's own webhooks), promotions compared on the runs' metrics as MLflow holds them at
promotion time, through the REST adapter. What it cannot prove: servers with authentication."""

from __future__ import annotations

import uuid

import pytest

from modelpilot.domain.commands import PromoteModel
from modelpilot.exceptions import TransientError
from tests.integration.mlflow.conftest import POLICY

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LIVE_POLICY = POLICY.replace(
    "    prod:\n      no_regression: [{metric: auc, greater_is_better: true}]",
    "    prod:\n      no_regression: {source: mlflow, metrics: [auc, {metric: loss, greater_is_better: false}]}",
)


def _log_run(url: str, name: str, auc: float, loss: float | None) -> tuple[str, str]:
    """Log a run with metrics and a model registered as ``name``; return (MLflow version, run id)."""
    import mlflow

    mlflow.set_tracking_uri(url)
    folder_run = mlflow.start_run()
    with folder_run:
        mlflow.log_metric("auc", auc)
        if loss is not None:
            mlflow.log_metric("loss", loss)
        mlflow.log_text("flavors: {}\n", "model/MLmodel")
    client = mlflow.MlflowClient(url)
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    mv = client.create_model_version(name, f"{folder_run.info.artifact_uri}/model", run_id=folder_run.info.run_id)
    return str(mv.version), folder_run.info.run_id


def _registered(receiver, name: str, version: str):
    return receiver.wait(
        f"{name} v{version} registered",
        lambda: receiver.bus.services.registry.find_version(name, external_id=f"{name}/{version}"),
    )


def _to(bus, name: str, environment: str, version: int):
    return bus.handle(PromoteModel(model=name, environment=environment, actor="user:release", version=version))


def _gates(outcome) -> dict[str, dict]:
    return {g["gate"]: g for g in outcome.data["gate_report"]["gates"]}


@pytest.mark.parametrize("receiver", [LIVE_POLICY], indirect=True)
def test_promotions_compare_the_runs_metrics_as_mlflow_holds_them_now(receiver, mlflow_server):
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_server.url)
    bus, name = receiver.bus, f"live-{uuid.uuid4().hex[:6]}"
    first, run1 = _log_run(mlflow_server.url, name, auc=0.80, loss=0.40)
    second, run2 = _log_run(mlflow_server.url, name, auc=0.84, loss=0.35)
    v1, v2 = _registered(receiver, name, first), _registered(receiver, name, second)
    assert (v1.manifest.lineage.run_id, v2.manifest.lineage.run_id) == (run1, run2)
    assert _to(bus, name, "staging", v1.version).status == "promoted"
    assert _to(bus, name, "prod", v1.version).status == "promoted"
    assert _to(bus, name, "staging", v2.version).status == "promoted"

    # v2's run is evaluated again after its registration and regresses: the live values block it, with the reason
    client.log_metric(run2, "auc", 0.71, step=1)
    blocked = _to(bus, name, "prod", v2.version)
    assert blocked.status == "blocked", blocked.message
    auc = _gates(blocked)["no_regression:auc"]
    assert auc["status"] == "failed" and auc["observed"] == 0.71
    assert f"candidate v{v2.version}=0.71 vs incumbent v{v1.version}=0.8 (MLflow runs, read now)" in auc["reason"]
    assert auc["expected"]["candidate_run"] == run2 and auc["expected"]["incumbent_run"] == run1
    assert _gates(blocked)["no_regression:loss"]["status"] == "passed"  # lower is better: 0.35 <= 0.40
    assert "blocked: auc: candidate" in blocked.message and bus.services.registry.get_alias(name, "prod").version == 1
    assert client.get_model_version(name, second).tags["modelpilot.prod"] == "blocked"  # visible in MLflow
    assert v2.manifest.metrics["auc"] == 0.84  # the manifest alone would have let it through

    # a later evaluation logs a better value: the same promotion passes, and the audit records what was read
    client.log_metric(run2, "auc", 0.86, step=2)
    promoted = _to(bus, name, "prod", v2.version)
    assert promoted.status == "promoted", promoted.message
    assert {g: r["status"] for g, r in _gates(promoted).items() if g.startswith("no_regression")} == {
        "no_regression:auc": "passed",
        "no_regression:loss": "passed",
    }
    [audit] = [
        r
        for r in bus.services.registry.audit_records(name)
        if r.action == "promote" and r.environment == "prod" and r.to_version == v2.version
    ]
    assert audit.evidence["live_metrics"] == {
        f"v{v1.version}": {"run_id": run1, "metrics": {"auc": 0.80, "loss": 0.40}, "error": None},
        f"v{v2.version}": {"run_id": run2, "metrics": {"auc": 0.86, "loss": 0.35}, "error": None},
    }
    assert audit.gate_report_digest == promoted.data["gate_report_digest"]


@pytest.mark.parametrize("receiver", [LIVE_POLICY], indirect=True)
def test_a_metric_missing_from_a_run_blocks_and_an_unreachable_server_is_transient(receiver, mlflow_server):
    from modelpilot.bootstrap import bootstrap
    from modelpilot.config import Settings
    from tests.support.prometheus import free_port

    bus, name = receiver.bus, f"gaps-{uuid.uuid4().hex[:6]}"
    first, run1 = _log_run(mlflow_server.url, name, auc=0.80, loss=None)  # the incumbent's run never logged loss
    second, _ = _log_run(mlflow_server.url, name, auc=0.90, loss=0.30)
    v1, v2 = _registered(receiver, name, first), _registered(receiver, name, second)
    assert _to(bus, name, "staging", v1.version).status == "promoted"
    assert _to(bus, name, "prod", v1.version).status == "promoted"
    assert _to(bus, name, "staging", v2.version).status == "promoted"

    blocked = _to(bus, name, "prod", v2.version)  # fail closed: no loss to compare with is not a pass
    assert blocked.status == "blocked"
    gates = _gates(blocked)
    assert gates["no_regression:auc"]["status"] == "passed"
    assert gates["no_regression:loss"]["status"] == "failed"
    assert gates["no_regression:loss"]["reason"] == f"incumbent v{v1.version}'s MLflow run {run1} has no metric 'loss'"

    # MLflow unreachable: the promotion raises TransientError (the platform retries), nothing moves
    down = bootstrap(Settings(home=str(receiver.home), mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(TransientError):
        _to(down, name, "prod", v2.version)
    assert bus.services.registry.get_alias(name, "prod").version == v1.version
