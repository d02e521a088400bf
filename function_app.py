"""Azure Functions entry point: registers the blueprints of ``functions/azure`` and nothing else.

The core package ``modelpilot`` is installed, not found by path: the remote build
installs ``requirements.txt`` (``.[azure]``, this project with its Azure extra), and
the development virtualenv installs it editable. ``functions`` is imported from the
app root, which the Python worker puts on ``sys.path``.
"""

from __future__ import annotations

import azure.functions as func

from functions.azure import BLUEPRINTS

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
