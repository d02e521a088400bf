"""Live metrics for the no-regression gates: the MLflow run metrics of the versions compared, read at promotion time.

A rule ``{metric: auc, source: mlflow}`` (or the block ``no_regression: {source: mlflow, metrics: [auc]}``) compares
the latest values of the candidate's and the incumbent's MLflow runs (their run ids are in their lineage: recorded
when ModelPilot imported the version from MLflow, or written into the package's ``lineage.run_id``), not the values
recorded at registration. What cannot be read is recorded as the version's error and fails the gate (fail closed):
no MLflow server configured, no run id in the lineage, a run MLflow does not have. MLflow unreachable raises
``TransientError`` (the platform retries); it is never a pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.domain.gates import LiveMetrics
from modelpilot.exceptions import NotFound

if TYPE_CHECKING:
    from collections.abc import Sequence

    from modelpilot.domain.gates import EnvironmentGates
    from modelpilot.domain.model import ModelVersion
    from modelpilot.ports import MlflowRegistry

__all__ = ["needs_live_metrics", "read_live_metrics"]


def needs_live_metrics(gates: EnvironmentGates) -> bool:
    """Return True when a no-regression rule of ``gates`` reads its values from MLflow."""
    return any(getattr(rule, "source", "manifest") == "mlflow" for rule in gates.no_regression)


def read_live_metrics(mlflow: MlflowRegistry | None, versions: Sequence[ModelVersion]) -> LiveMetrics:
    """Read the run metrics of ``versions`` from MLflow (one ``runs/get`` per version; transient errors raise)."""
    live = LiveMetrics()
    for version in versions:
        run_id = version.manifest.lineage.run_id
        if mlflow is None:
            live.errors[version.version] = "no MLflow server is configured: set MODELPILOT_MLFLOW_TRACKING_URI"
        elif not run_id:
            live.errors[version.version] = "has no MLflow run id in its lineage (lineage.run_id)"
        else:
            live.runs[version.version] = run_id
            try:
                live.metrics[version.version] = dict(mlflow.run(run_id).metrics)
            except NotFound:
                live.errors[version.version] = f"MLflow has no run {run_id} (deleted, or another tracking server)"
    return live
