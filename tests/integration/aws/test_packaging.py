"""``make package-aws``: the layer and function zips are built for Lambda's Python and architecture."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest

from tests.support.aws import REPO


@pytest.mark.slow
def test_layer_and_functions_zips_for_python312_arm64(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "infra" / "aws" / "package.py"), "--arch", "arm64", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "total unpacked" in done.stdout
    layer = zipfile.ZipFile(tmp_path / "layer.zip").namelist()
    functions = zipfile.ZipFile(tmp_path / "functions.zip").namelist()
    assert "python/modelpilot/bootstrap.py" in layer and "python/modelpilot/adapters/aws/registry.py" in layer
    assert any(n.startswith("python/aws_lambda_powertools/") for n in layer)
    # traces leave the function over OTLP/HTTP, X-Ray headers map to W3C, logs are ECS
    for package in ("opentelemetry/exporter/otlp/proto/http/", "opentelemetry/propagators/aws/", "ecs_logging/"):
        assert any(n.startswith(f"python/{package}") for n in layer), package
    native = [n for n in layer if n.startswith("python/pydantic_core/") and n.endswith(".so")]
    assert native and all("cpython-312-aarch64-linux-gnu" in n for n in native)
    assert not any(n.startswith(("python/boto3/", "python/botocore/")) for n in layer)  # the runtime has them
    assert not any("__pycache__" in n for n in layer + functions)
    assert {
        "model_upload.py",
        "sagemaker_registry.py",
        "alarm.py",
        "operator_api.py",
        "promote.py",
        "rollback.py",
        "drift_batch.py",
        "slo_check.py",
    } <= set(functions)
    unpacked = sum(i.file_size for i in zipfile.ZipFile(tmp_path / "layer.zip").infolist())
    assert unpacked < 250 * 1024 * 1024
