"""Register an MLflow model version: copy its artifacts into a package, with digests computed while copying.

The package is written below ``<data root>/mlflow/<model>/v<MLflow version>/`` (never below the model bucket's
``models/`` prefix, whose uploads the upload function registers by itself): every artifact file of the version
(read through the MLflow server's artifact proxy, hashed as it streams, its size checked against MLflow's
listing), ``mlflow-run.json`` (the run's metrics, params and tags: the lineage evidence, digest-addressed like the
model) and a ``modelpilot.json`` whose metrics are the run's metrics, so the no-regression gates compare the
candidate's run with the incumbent's. The registration itself is the ordinary one (``register_model``), which
verifies every digest again by reading the package back from the artifact store.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from modelpilot.domain.commands import RegisterModel
from modelpilot.exceptions import DataError, InvalidInput, SizeMismatch, TransientError
from modelpilot.service.lifecycle import register_model
from modelpilot.service.messagebus import Outcome
from modelpilot.service.mlflow._common import SOURCE, client, external_id, model_name, settings

if TYPE_CHECKING:
    from modelpilot.domain.commands import ImportMlflowVersion
    from modelpilot.ports import MlflowModelVersion, MlflowRegistry, MlflowRun
    from modelpilot.service.messagebus import Services

__all__ = ["RUN_FILE", "import_mlflow_version"]

RUN_FILE = "mlflow-run.json"
#: MLflow creates a version PENDING_REGISTRATION while it copies; READY once it can be read
_READY = {"READY", ""}


def import_mlflow_version(cmd: ImportMlflowVersion, svc: Services) -> Outcome:
    """Copy an MLflow model version into a package and register it (idempotent on the version)."""
    policy = settings(svc)
    model = model_name(policy, cmd.mlflow_model)
    ref = external_id(cmd.mlflow_model, cmd.mlflow_version)
    if model is None:
        return Outcome(
            "ignored",
            f"MLflow model {cmd.mlflow_model!r} is not followed: name it in the policy's mlflow.models",
            {"mlflow_model": cmd.mlflow_model},
        )
    existing = svc.registry.find_version(model, external_id=ref)
    if existing is not None:
        return Outcome(
            "unchanged",
            f"MLflow {ref} is already {model} v{existing.version}",
            {"model": model, "version": existing.version, "mlflow": ref},
        )
    mlflow = client(svc)
    mv = mlflow.model_version(cmd.mlflow_model, cmd.mlflow_version)
    if mv.status not in _READY:
        raise TransientError(f"MLflow {ref} is {mv.status}, not READY yet; try again")
    run = mlflow.run(mv.run_id) if mv.run_id else None
    root = svc.artifacts.join(svc.data_root, "mlflow", model, f"v{cmd.mlflow_version}")
    artifacts = _copy_artifacts(svc, mlflow, mv, root, policy.max_artifact_bytes, policy.max_artifacts)
    record = _run_record(mlflow, mv, run)
    artifacts.append(_write(svc, root, RUN_FILE, json.dumps(record, indent=2, sort_keys=True).encode()))
    manifest = _manifest(model, mlflow, mv, run, artifacts)
    svc.artifacts.write_bytes(
        svc.artifacts.join(root, "modelpilot.json"),
        json.dumps(manifest, indent=2, sort_keys=True).encode(),
        content_type="application/json",
        write_once=True,
    )
    outcome = register_model(
        RegisterModel(package_uri=root, actor=cmd.actor, trigger=cmd.trigger, source=SOURCE, external_id=ref), svc
    )
    outcome.data.update({"mlflow": ref, "package_uri": root, "artifacts": len(artifacts)})
    return outcome


def _write(svc: Services, root: str, path: str, data: bytes) -> dict[str, Any]:
    svc.artifacts.write_bytes(svc.artifacts.join(root, path), data, write_once=True)
    return {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _copy_artifacts(
    svc: Services, mlflow: MlflowRegistry, mv: MlflowModelVersion, root: str, max_bytes: int, max_files: int
) -> list[dict[str, Any]]:
    files = mlflow.artifact_files(mv.name, mv.version)
    if not files:
        raise InvalidInput(f"MLflow {mv.name} v{mv.version} has no artifact files to register")
    if len(files) > max_files:
        raise DataError(f"MLflow {mv.name} v{mv.version} has {len(files)} files; the policy allows {max_files}")
    copied = []
    for file in files:
        if file.path in {"modelpilot.json", RUN_FILE}:
            raise InvalidInput(f"MLflow {mv.name} v{mv.version} has an artifact {file.path}, a name ModelPilot uses")
        if file.size is not None and file.size > max_bytes:
            raise DataError(f"artifact {file.path} is {file.size} bytes; mlflow.max_artifact_bytes is {max_bytes}")
        digest, buffer = hashlib.sha256(), bytearray()
        for chunk in mlflow.open_artifact(mv.name, mv.version, file.path):
            digest.update(chunk)
            buffer += chunk
            if len(buffer) > max_bytes:
                raise DataError(f"artifact {file.path} is over {max_bytes} bytes (mlflow.max_artifact_bytes)")
        if file.size is not None and len(buffer) != file.size:
            raise SizeMismatch(
                f"artifact {file.path}: read {len(buffer)} bytes, MLflow lists {file.size}",
                file=file.path,
                expected=file.size,
                actual=len(buffer),
            )
        svc.artifacts.write_bytes(svc.artifacts.join(root, file.path), bytes(buffer), write_once=True)
        copied.append({"path": file.path, "sha256": digest.hexdigest(), "size": len(buffer)})
    return copied


def _run_url(mlflow: MlflowRegistry, run: MlflowRun | None) -> str | None:
    if run is None or not mlflow.tracking_uri:
        return None
    return f"{mlflow.tracking_uri}/#/experiments/{run.experiment_id}/runs/{run.run_id}"


def _run_record(mlflow: MlflowRegistry, mv: MlflowModelVersion, run: MlflowRun | None) -> dict[str, Any]:
    return {
        "tracking_uri": mlflow.tracking_uri,
        "registered_model": mv.name,
        "version": mv.version,
        "source": mv.source,
        "run_id": mv.run_id,
        "experiment_id": run.experiment_id if run else None,
        "user_id": run.user_id if run else None,
        "metrics": run.metrics if run else {},
        "params": run.params if run else {},
        "tags": run.tags if run else {},
    }


def _manifest(
    model: str, mlflow: MlflowRegistry, mv: MlflowModelVersion, run: MlflowRun | None, artifacts: list[dict[str, Any]]
) -> dict[str, Any]:
    metrics = {k: v for k, v in (run.metrics if run else {}).items() if math.isfinite(v)}
    tags = run.tags if run else {}
    lineage = {
        "run_id": mv.run_id,
        "code_revision": tags.get("mlflow.source.git.commit"),
        "run_url": _run_url(mlflow, run),
        "built_by": (run.user_id if run else None) or None,
    }
    return {
        "schema_version": 1,
        "name": model,
        "framework": "mlflow",
        "description": mv.description or None,
        "metrics": metrics,
        "lineage": {k: v for k, v in lineage.items() if v},
        "artifacts": sorted(artifacts, key=lambda a: a["path"]),
        "tags": {"mlflow.registered_model": mv.name, "mlflow.version": mv.version, "mlflow.source": mv.source[:500]},
    }
