"""One harness server per test process, and the stacks the stories run on (created once, shared)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stack.aws_harness import AwsStack, MotoProcess
from tests.stack.aws_stories import ARTIFACT_BUCKET


@pytest.fixture(scope="session")
def harness_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoProcess]:
    server = MotoProcess(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def aws_stack(harness_server: MotoProcess, tmp_path_factory: pytest.TempPathFactory, mlflow_server: Any) -> AwsStack:
    """The stack the stories write their policy files into, with the SageMaker artifact bucket and a real MLflow
    tracking server (tests/support/mlflow_server.py) behind MlflowTrackingUri."""
    stack = AwsStack(
        harness_server,
        tmp_path_factory.mktemp("stack"),
        name=f"mp-{uuid.uuid4().hex[:6]}",
        # a drift window above 100 kB is fanned out (the drift_fan_out story's); the drift timer's is read inline
        parameters={
            "SageMakerArtifactBuckets": ARTIFACT_BUCKET,
            "DriftFanOutBytes": "100000",
            "MlflowTrackingUri": mlflow_server.url,
        },
    )
    harness_server.relax_iam()
    stack.client("s3").create_bucket(Bucket=ARTIFACT_BUCKET)
    return stack.deploy()


@pytest.fixture(scope="session")
def fresh_stack(harness_server: MotoProcess, tmp_path_factory: pytest.TempPathFactory) -> AwsStack:
    """A stack as `sam deploy` leaves it with every parameter at its default, and no modelpilot.yaml."""
    stack = AwsStack(harness_server, tmp_path_factory.mktemp("fresh"), name=f"fresh-{uuid.uuid4().hex[:6]}")
    return stack.deploy()
