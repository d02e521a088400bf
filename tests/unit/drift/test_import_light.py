"""The drift handlers and CLI plugin load without numpy; the engine loads it only when used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in json.loads(out)}


@pytest.mark.parametrize(
    "statement",
    [
        "import modelpilot.service.drift.handlers",
        "import modelpilot.policy.drift, modelpilot.policy",
        "import modelpilot.cli.drift",
        "import modelpilot.demo",
    ],
)
def test_no_numpy_at_import(statement):
    assert not loaded_after(statement) & {"numpy", "pyarrow", "scipy"}


def test_engine_needs_no_scipy_or_pyarrow():
    loaded = loaded_after("import modelpilot.drift, modelpilot.service.drift.batch")
    assert "numpy" in loaded and not loaded & {"scipy", "pyarrow"}
