"""Azure Functions blueprints (Python v2 programming model).

Each function only translates its trigger, dispatches one command to the bus and
shapes the reply; ``function_app.py`` at the repository root registers
:data:`BLUEPRINTS` and nothing else.
"""

from __future__ import annotations

from functions.azure.alerts import bp as alerts
from functions.azure.azureml import bp as azureml
from functions.azure.operator_api import bp as operator_api
from functions.azure.timers import bp as timers
from functions.azure.upload import bp as upload

__all__ = ["BLUEPRINTS"]

BLUEPRINTS = [upload, azureml, timers, operator_api, alerts]
