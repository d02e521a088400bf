"""Azure Functions blueprints (Python v2 programming model).

Each function only translates its trigger, dispatches one command to the bus and
shapes the reply; ``function_app.py`` at the repository root registers
:data:`BLUEPRINTS` and nothing else.
"""

from __future__ import annotations

from typing import Any

from functions.azure.alerts import bp as alerts
from functions.azure.azureml import bp as azureml
from functions.azure.mlflow import bp as mlflow
from functions.azure.operator_api import bp as operator_api
from functions.azure.quality import bp as quality
from functions.azure.timers import bp as timers
from functions.azure.timers import drift_bp, durable_drift_bp
from functions.azure.upload import bp as upload
from modelpilot.bootstrap import prepare
from modelpilot.config import Settings

__all__ = ["BLUEPRINTS"]

BLUEPRINTS: list[Any] = [upload, azureml, timers, operator_api, quality, alerts, mlflow]
# The Durable Functions drift fan-out (docs/scale.md) only where the app setting turns it on: importing the
# Durable SDK costs every function's cold start, and nothing starts the orchestration unless it is wanted.
# With it, the drift timer carries a Durable client binding to start the orchestration of a large window.
if Settings.from_env().azure_durable_drift:
    from functions.azure.drift_durable import bp as drift_durable

    BLUEPRINTS += [drift_durable, durable_drift_bp()]
else:
    BLUEPRINTS.append(drift_bp)

# The worker indexes function_app.py in the process that then serves every function: build the bus, its clients,
# the handlers of every command the app dispatches and the policy now, not on the first event (a no-op outside
# the Functions host; a failure is logged and met again by the first invocation).
prepare(
    (
        "RegisterModel",
        "PromoteModel",
        "ApproveModel",
        "RollbackModel",
        "HandleAlarm",
        "RunDriftBatch",
        "CheckSlos",
        "RunQualityBatch",
        "ImportMlflowVersion",
        "RequestMlflowPromotion",
        "SetMlflowVersionTag",
    ),
    modules=("modelpilot.service.queries", "modelpilot.service.drift.batch"),
    metrics_sources=True,
)
