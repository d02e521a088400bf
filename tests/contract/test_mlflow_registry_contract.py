"""One contract for every MlflowRegistry: the in-memory fake and the REST adapter on a real ``mlflow server``.

A version with a run (metrics logged twice, params) and nested artifact files is created the way MLflow users do,
through MLflow's own client; the port must read it back exactly, set and remove aliases idempotently and set tags.
What this cannot prove: servers behind authentication (no auth app is started), or artifact stores other than the
server's proxy.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from modelpilot.exceptions import InvalidInput, NotFound, TransientError
from modelpilot.ports import MlflowRun
from modelpilot.testing import InMemoryMlflowRegistry

FILES = {"MLmodel": b"flavors:\n  python_function: {}\n", "data/weights.bin": bytes(range(256)) * 5}


@dataclass
class Case:
    registry: Any
    name: str
    version: str
    run_id: str


def _fake() -> Case:
    fake = InMemoryMlflowRegistry()
    run = MlflowRun("run-1", "0", "alice", "FINISHED", metrics={"auc": 0.91}, params={"C": "0.5"})
    fake.add_version("churn", "1", FILES, run=run)
    return Case(fake, "churn", "1", "run-1")


def _rest(server, tmp_path) -> Case:
    import mlflow
    from mlflow import MlflowClient

    from modelpilot.adapters.mlflow import MlflowRestRegistry

    client = MlflowClient(server.url)
    mlflow.set_tracking_uri(server.url)
    folder = tmp_path / "model"
    for path, data in FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    with mlflow.start_run() as run:
        mlflow.log_metric("auc", 0.5, step=0)
        mlflow.log_metric("auc", 0.91, step=1)  # the latest value is the one that counts
        mlflow.log_param("C", "0.5")
        mlflow.log_artifacts(str(folder), artifact_path="model")
    name = f"contract-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return Case(MlflowRestRegistry(server.url), name, mv.version, run.info.run_id)


@pytest.fixture(params=["fake", "rest"])
def case(request, tmp_path):
    if request.param == "fake":
        return _fake()
    return _rest(request.getfixturevalue("mlflow_server"), tmp_path)


def test_a_version_and_its_run_read_back(case):
    mv = case.registry.model_version(case.name, case.version)
    assert (mv.name, mv.version, mv.run_id, mv.status) == (case.name, case.version, case.run_id, "READY")
    run = case.registry.run(case.run_id)
    assert run.metrics == {"auc": 0.91} and run.params == {"C": "0.5"}


def test_artifact_files_are_listed_recursively_and_read_back_exactly(case):
    files = case.registry.artifact_files(case.name, case.version)
    assert [(f.path, f.size) for f in files] == [(p, len(d)) for p, d in sorted(FILES.items())]
    for path, data in FILES.items():
        assert b"".join(case.registry.open_artifact(case.name, case.version, path)) == data


def test_aliases_are_set_moved_and_removed_idempotently(case):
    r = case.registry
    assert r.alias_version(case.name, "champion") is None
    r.set_alias(case.name, "champion", case.version)
    r.set_alias(case.name, "champion", case.version)
    assert r.alias_version(case.name, "champion") == case.version
    assert "champion" in r.model_version(case.name, case.version).aliases
    r.delete_alias(case.name, "champion")
    r.delete_alias(case.name, "champion")
    assert r.alias_version(case.name, "champion") is None


def test_tags_are_set_and_read_back(case):
    case.registry.set_version_tag(case.name, case.version, "modelpilot.prod", "promoted")
    case.registry.set_version_tag(case.name, case.version, "modelpilot.prod", "blocked")
    assert case.registry.model_version(case.name, case.version).tags["modelpilot.prod"] == "blocked"


def test_unknown_things_are_not_found(case):
    with pytest.raises(NotFound):
        case.registry.model_version(case.name, "999")
    with pytest.raises(NotFound):
        case.registry.run("0" * 32)


def test_an_unreachable_server_is_a_transient_error():
    from modelpilot.adapters.mlflow import MlflowRestRegistry
    from tests.support.outbound import closed_port

    with pytest.raises(TransientError):
        MlflowRestRegistry(f"http://127.0.0.1:{closed_port()}", timeout=2).model_version("churn", "1")


def test_credentials_in_the_url_and_paths_leaving_the_model_are_refused(mlflow_server):
    from modelpilot.adapters.mlflow import MlflowRestRegistry

    with pytest.raises(InvalidInput, match="credentials"):
        MlflowRestRegistry("http://user:pw@127.0.0.1:5000")
    with pytest.raises(InvalidInput, match="leaves"):
        list(MlflowRestRegistry(mlflow_server.url).open_artifact("churn", "1", "../../etc/passwd"))
