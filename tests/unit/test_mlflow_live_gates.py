"""No-regression gates on live MLflow metrics (``source: mlflow``), on fakes: the policy's two shapes, the values
read at promotion time and recorded, and every way of failing closed. The real REST path is in
tests/integration/mlflow/test_mlflow_live_metrics.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelpilot.domain.commands import ImportMlflowVersion, PromoteModel, RegisterModel
from modelpilot.exceptions import PolicyError, TransientError
from modelpilot.package.builder import write_package
from modelpilot.policy import parse_policy
from modelpilot.ports import MlflowRun
from modelpilot.testing import InMemoryMlflowRegistry, fake_bus


def _policy(no_regression) -> dict:
    return {
        "environments": ["staging", "prod"],
        "defaults": {"environments": {"prod": {"no_regression": no_regression}}},
    }


LIVE = _policy({"source": "mlflow", "metrics": ["auc"]})


def _world(policy: dict = LIVE, *, registry: InMemoryMlflowRegistry | None = None):
    mlflow = registry or InMemoryMlflowRegistry()
    bus = fake_bus(parse_policy(policy), mlflow=mlflow)
    return bus, mlflow


def _release(bus, mlflow, version: str, auc: float, *, env: str = "prod") -> None:
    """An MLflow version with a run logging ``auc``: imported, then promoted to staging (and ``env``)."""
    run = MlflowRun(f"run{version}", "0", "alice", "FINISHED", metrics={"auc": auc})
    mlflow.add_version("churn", version, {"MLmodel": b"flavors: {}\n"}, run=run)
    assert bus.handle(ImportMlflowVersion("churn", version, actor="system:mlflow")).status == "registered"
    assert bus.handle(PromoteModel(model="churn", environment="staging", actor="user:bob")).status == "promoted"


def _register_package(bus, folder, n: int) -> None:
    """Register a package with no MLflow run id in its lineage (an upload), v``n``, and promote it to staging."""
    root = folder / f"v{n}"
    write_package(root, files={"model.bin": bytes([n]) * 16}, name="churn", framework="sklearn", metrics={"auc": 0.9})
    store = bus.services.artifacts
    for path in root.iterdir():
        store.write_bytes(store.join(f"mem://pkg/v{n}", path.name), path.read_bytes())
    assert bus.handle(RegisterModel(package_uri=f"mem://pkg/v{n}", actor="user:alice")).status == "registered"
    staged = bus.handle(PromoteModel(model="churn", environment="staging", actor="user:bob", version=n))
    assert staged.status == "promoted"


def _promote(bus, version: int):
    return bus.handle(PromoteModel(model="churn", environment="prod", actor="user:bob", version=version))


def _gate(outcome, name: str = "no_regression:auc") -> dict:
    [gate] = [g for g in outcome.data["gate_report"]["gates"] if g["gate"] == name]
    return gate


# -- the policy -------------------------------------------------------------------------------
def test_the_block_and_the_list_shapes_say_the_same_and_the_default_source_is_the_manifest():
    block = parse_policy(
        _policy({"source": "mlflow", "metrics": ["auc", {"metric": "loss", "greater_is_better": False}]})
    )
    listed = parse_policy(
        _policy(
            [{"metric": "auc", "source": "mlflow"}, {"metric": "loss", "greater_is_better": False, "source": "mlflow"}]
        )
    )
    assert block.gates_for("churn", "prod") == listed.gates_for("churn", "prod")
    [rule] = parse_policy(_policy([{"metric": "auc"}])).gates_for("churn", "prod").no_regression
    assert rule.source == "manifest"  # the existing shape keeps its meaning


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ({"source": "mlflow", "metric": ["auc"]}, "unknown keys ['metric']"),
        ({"source": "mlflow", "metrics": [{"metric": "auc", "source": "manifest"}]}, "in a 'mlflow' block"),
        ({"source": "wandb", "metrics": ["auc"]}, "source"),
    ],
)
def test_a_wrong_block_is_refused_with_a_message(block, words):
    with pytest.raises(PolicyError) as raised:
        parse_policy(_policy(block))
    assert words in str(raised.value)


# -- the gate -----------------------------------------------------------------------------------
def test_the_runs_metrics_are_read_at_promotion_time_and_recorded():
    bus, mlflow = _world()
    _release(bus, mlflow, "1", 0.80)
    assert _promote(bus, 1).status == "promoted"
    _release(bus, mlflow, "2", 0.90)  # registered with 0.90: the manifest alone would let it through
    mlflow.runs["run2"] = replace(mlflow.runs["run2"], metrics={"auc": 0.70})  # evaluated again after registration
    blocked = _promote(bus, 2)
    assert blocked.status == "blocked"
    gate = _gate(blocked)
    assert gate["status"] == "failed" and "v2=0.7 vs incumbent v1=0.8 (MLflow runs, read now)" in gate["reason"]
    assert gate["expected"] == {
        "baseline": 0.8, "bound": 0.8, "source": "mlflow", "candidate_run": "run2", "incumbent_run": "run1"
    }  # fmt: skip
    mlflow.runs["run2"] = replace(mlflow.runs["run2"], metrics={"auc": 0.85})
    promoted = _promote(bus, 2)
    assert promoted.status == "promoted" and _gate(promoted)["observed"] == 0.85
    [audit] = [
        e
        for e in bus.services.registry.audit_records("churn")
        if e.action == "promote" and e.environment == "prod" and e.to_version == 2
    ]
    assert audit.evidence["live_metrics"] == {
        "v1": {"run_id": "run1", "metrics": {"auc": 0.8}, "error": None},
        "v2": {"run_id": "run2", "metrics": {"auc": 0.85}, "error": None},
    }


def test_the_manifest_source_still_compares_the_registered_values():
    bus, mlflow = _world(_policy([{"metric": "auc"}]))
    _release(bus, mlflow, "1", 0.80)
    assert _promote(bus, 1).status == "promoted"
    _release(bus, mlflow, "2", 0.90)
    mlflow.runs["run2"] = replace(mlflow.runs["run2"], metrics={"auc": 0.70})
    promoted = _promote(bus, 2)
    assert promoted.status == "promoted" and _gate(promoted)["expected"] == {"baseline": 0.8, "bound": 0.8}


def test_a_metric_missing_from_a_run_fails_closed():
    bus, mlflow = _world()
    _release(bus, mlflow, "1", 0.80)
    assert _promote(bus, 1).status == "promoted"
    mlflow.runs["run1"] = replace(mlflow.runs["run1"], metrics={"loss": 0.3})
    _release(bus, mlflow, "2", 0.90)
    blocked = _promote(bus, 2)
    assert blocked.status == "blocked"
    assert _gate(blocked)["reason"] == "incumbent v1's MLflow run run1 has no metric 'auc'"


def test_a_deleted_run_fails_closed():
    bus, mlflow = _world()
    _release(bus, mlflow, "1", 0.80)
    assert _promote(bus, 1).status == "promoted"
    _release(bus, mlflow, "2", 0.90)
    del mlflow.runs["run2"]
    blocked = _promote(bus, 2)
    assert blocked.status == "blocked"
    assert _gate(blocked)["reason"] == "candidate v2: MLflow has no run run2 (deleted, or another tracking server)"


def test_a_version_without_a_run_id_fails_closed(tmp_path):
    bus, mlflow = _world()
    _register_package(bus, tmp_path, 1)
    assert _promote(bus, 1).status == "promoted"  # nothing in prod: nothing to compare with
    _release(bus, mlflow, "2", 0.90)
    blocked = _promote(bus, 2)
    assert blocked.status == "blocked"
    assert _gate(blocked)["reason"] == "incumbent v1: has no MLflow run id in its lineage (lineage.run_id)"


def test_no_mlflow_server_fails_closed(tmp_path):
    bus, _ = _world()
    bus.services.mlflow = None
    _register_package(bus, tmp_path, 1)
    assert _promote(bus, 1).status == "promoted"
    _register_package(bus, tmp_path, 2)
    blocked = _promote(bus, 2)
    assert blocked.status == "blocked"
    assert _gate(blocked)["reason"] == (
        "candidate v2: no MLflow server is configured: set MODELPILOT_MLFLOW_TRACKING_URI"
    )


class _Down(InMemoryMlflowRegistry):
    down = False

    def run(self, run_id: str) -> MlflowRun:
        if self.down:
            raise TransientError("cannot reach MLflow")
        return super().run(run_id)


def test_mlflow_unavailable_raises_transient_and_moves_nothing():
    bus, mlflow = _world(registry=_Down())
    _release(bus, mlflow, "1", 0.80)
    assert _promote(bus, 1).status == "promoted"
    _release(bus, mlflow, "2", 0.90)
    mlflow.down = True
    with pytest.raises(TransientError):
        _promote(bus, 2)
    assert bus.services.registry.get_alias("churn", "prod").version == 1
    mlflow.down = False  # the platform's retry, once MLflow is back
    assert _promote(bus, 2).status == "promoted"


def test_the_offline_package_check_leaves_live_rules_to_the_promotion():
    from modelpilot.package.check import pre_upload_report

    bus, mlflow = _world()
    _release(bus, mlflow, "1", 0.80)
    assert _promote(bus, 1).status == "promoted"
    incumbent = bus.services.registry.get_version("churn", 1)
    gates = parse_policy(LIVE).gates_for("churn", "prod")
    report = pre_upload_report(
        incumbent.manifest, "sha256:other", gates, "prod", previous_environment="staging", incumbent=incumbent
    )
    [gate] = [r for r in report.results if r.gate == "no_regression:auc"]
    assert (gate.status, gate.reason) == ("skipped", "compared on the MLflow runs at promotion time (source: mlflow)")


def test_the_policy_schema_describes_both_shapes():
    import jsonschema

    from modelpilot.policy import policy_schema

    validator = jsonschema.Draft202012Validator(policy_schema())
    block = {"source": "mlflow", "metrics": ["auc", {"metric": "loss", "greater_is_better": False}]}
    for shape in (block, [{"metric": "auc", "source": "mlflow"}], [{"metric": "auc"}]):
        assert not list(validator.iter_errors({"version": 1, **_policy(shape)})), shape
    for wrong in ({"source": "wandb", "metrics": ["auc"]}, {"source": "mlflow", "metric": ["auc"]}):
        assert list(validator.iter_errors({"version": 1, **_policy(wrong)})), wrong


def test_the_release_view_reads_the_runs_as_a_promotion_does():
    from modelpilot.service.release import release_state

    bus, mlflow = _world()
    _release(bus, mlflow, "1", 0.80)
    assert _promote(bus, 1).status == "promoted"
    _release(bus, mlflow, "2", 0.90)
    svc = bus.services

    def state():
        return release_state(svc.registry, svc.policy, "churn", "prod", svc.clock(), version=2, mlflow=mlflow)

    assert state().verdict == "pending"  # what `modelpilot wait` sees: the gates pass, waiting for the promotion
    mlflow.runs["run2"] = replace(mlflow.runs["run2"], metrics={"auc": 0.70})
    blocked = state()
    assert blocked.verdict == "blocked" and "v2=0.7 vs incumbent v1=0.8 (MLflow runs, read now)" in blocked.message
    unread = release_state(svc.registry, svc.policy, "churn", "prod", svc.clock(), version=2)
    assert unread.verdict == "blocked" and "no MLflow server is configured" in unread.message  # never a pass
