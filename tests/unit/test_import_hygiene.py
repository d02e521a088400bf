"""Cold start is an API: the core imports no cloud SDK and no numpy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("boto3", "botocore", "azure", "numpy", "pyarrow", "aws_lambda_powertools", "scipy")


def loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; import json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {m.split(".")[0] for m in json.loads(out)}


@pytest.mark.parametrize(
    "statement",
    [
        "import modelpilot",
        "import modelpilot.domain.model, modelpilot.domain.gates, modelpilot.domain.audit, modelpilot.domain.rollback,"
        " modelpilot.domain.commands, modelpilot.domain.events",
        "import modelpilot.service.messagebus, modelpilot.service.lifecycle, modelpilot.service.queries",
        "import modelpilot.bootstrap, modelpilot.config, modelpilot.ports, modelpilot.exceptions",
        "import modelpilot.cli.app; modelpilot.cli.app.build_parser()",
    ],
)
def test_core_imports_no_heavy_dependency(statement):
    heavy = loaded_after(statement) & set(HEAVY)
    assert not heavy, f"{statement!r} imported {sorted(heavy)}"


def test_domain_imports_no_pydantic_or_yaml():
    loaded = loaded_after("import modelpilot.domain.model, modelpilot.domain.gates, modelpilot.domain.audit")
    assert not loaded & {"pydantic", "yaml", "opentelemetry", "sqlite3"}
