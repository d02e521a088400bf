"""Azure Functions entry point: registers the blueprints of ``functions/azure`` and nothing else.

The core package lives in ``shared/`` (src layout); it is put on ``sys.path`` so the
deployed app imports it exactly as the tests do.
"""

from __future__ import annotations

import sys
from pathlib import Path

_SHARED = str(Path(__file__).resolve().parent / "shared")
if _SHARED not in sys.path:
    sys.path.insert(0, _SHARED)

import azure.functions as func  # noqa: E402
from functions.azure import BLUEPRINTS  # noqa: E402

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
