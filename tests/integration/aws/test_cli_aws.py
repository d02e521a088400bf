"""``modelpilot --backend aws`` as an operator runs it against a stack (moto's server stands in for AWS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.aws import REGION, create_stack, put_policy, upload_package

CLI = Path(sys.executable).parent / "modelpilot"


@pytest.fixture
def stack(request, make_package, tmp_path):
    stack = create_stack(request)
    put_policy(stack)
    key = upload_package(stack, make_package("churn"), "models/churn/v1")
    stack.package = f"s3://{stack.bucket}/{key[:-16]}"
    return stack


def run(stack, tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODELPILOT_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        HOME=str(tmp_path),
        MODELPILOT_REGISTRY_TABLE=stack.registry_table,
        MODELPILOT_MODEL_BUCKET=stack.bucket,
        MODELPILOT_EVENT_BUS=stack.event_bus,
        MODELPILOT_TOPIC_ARN=stack.topic_arn,
    )
    command = [str(CLI), *args, "--backend", "aws", "--endpoint-url", stack.endpoint, "--region", REGION]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_cli_registers_promotes_and_verifies_against_the_aws_backend(stack, tmp_path):
    done = run(stack, tmp_path, "register", stack.package, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    done = run(stack, tmp_path, "promote", "churn", "--env", "dev", "--json")
    assert done.returncode == 0, done.stderr
    done = run(stack, tmp_path, "status", "--json")
    assert done.returncode == 0, done.stderr
    rows = {r["environment"]: r["version"] for r in json.loads(done.stdout)}
    assert rows == {"dev": 1, "prod": None}
    done = run(stack, tmp_path, "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    done = run(stack, tmp_path, "history", "churn", "--env", "dev", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)[0]["to_version"] == 1


def test_cli_errors_keep_their_exit_codes_on_aws(stack, tmp_path):
    assert run(stack, tmp_path, "status", "ghost").returncode == 4
    assert run(stack, tmp_path, "register", f"s3://{stack.bucket}/models/none").returncode == 2


def test_cli_without_a_registry_table_says_what_to_set(stack, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODELPILOT_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", HOME=str(tmp_path))
    done = subprocess.run(
        [str(CLI), "status", "--backend", "aws", "--endpoint-url", stack.endpoint, "--region", REGION],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 2 and "MODELPILOT_REGISTRY_TABLE" in done.stderr
