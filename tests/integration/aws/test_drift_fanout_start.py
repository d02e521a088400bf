"""The drift batch starts the drift state machine for a large window (moto's Step Functions) and reads a small one inline.

What is proven how: the window's captures and reference profile are in moto's S3, the state machine
(``infra/aws/drift.asl.json``, substituted) is created in moto's Step Functions, and the drift batch's
``run_one`` runs with the AWS adapter ``StepFunctionsFanOutStarter``. Above ``min_bytes`` it writes the
batch list, starts one execution named after the window (``DescribeExecution`` shows its input) and
reads nothing itself; a retried tick starts no second execution; once the execution has ended, a
further tick meets ``ExecutionAlreadyExists`` and reports ``unchanged``. The started input is then
driven through the definition's steps (``drive`` of test_drift_state_machine.py, with the children's and
the merge's handlers) and reports ``DriftDetected``. At or below ``min_bytes`` the window is read inline.
Not proven: moto runs no Distributed Map, so the execution itself is played by ``drive``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pytest

from modelpilot.adapters.aws.artifacts import S3ArtifactStore
from modelpilot.adapters.aws.stepfunctions import StepFunctionsFanOutStarter
from modelpilot.domain.model import ModelVersion
from modelpilot.drift.builder import build_reference
from modelpilot.entrypoints.aws.drift_fanout import merge_command, partial_reply
from modelpilot.exceptions import ModelPilotError
from modelpilot.service.drift.batch import run_one
from modelpilot.service.drift.store import profile_uri
from modelpilot.service.messagebus import MessageBus
from modelpilot.testing import fake_services
from tests.integration.aws.test_drift_state_machine import _substituted, drive
from tests.support.aws import client, create_bucket, moto_endpoint, unique

END = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def window(request):
    endpoint = moto_endpoint(request)
    s3, sfn = client("s3", endpoint), client("stepfunctions", endpoint)
    bucket = create_bucket(s3, unique("fanout"))
    machine = sfn.create_state_machine(
        name=unique("drift-fanout"),
        definition=json.dumps(_substituted()),
        roleArn="arn:aws:iam::123456789012:role/drift-fanout",
    )["stateMachineArn"]

    def services(min_bytes: int):
        starter = StepFunctionsFanOutStarter(machine, lambda: sfn, min_bytes=min_bytes)
        return fake_services(artifacts=S3ArtifactStore(s3), data_root=f"s3://{bucket}/monitoring", drift_fanout=starter)

    svc = services(1)
    rng = np.random.default_rng(5)
    reference = build_reference({"x": rng.normal(0, 1, 4000)}, bins=50)
    svc.artifacts.write_bytes(profile_uri(svc, "m", 1), reference.to_json())
    total = 0
    for i in range(6):
        body = ("x\n" + "".join(f"{v:.5f}\n" for v in rng.normal(2.5, 1, 300))).encode()
        s3.put_object(Bucket=bucket, Key=f"monitoring/captures/m/prod/2026/01/01/0{i % 3}/part-{i}.csv", Body=body)
        total += len(body)
    version = ModelVersion("m", 1, "digest", None, f"s3://{bucket}/models/m/v1", "user:test", END)  # type: ignore[arg-type]
    return {
        "s3": s3,
        "sfn": sfn,
        "bucket": bucket,
        "machine": machine,
        "services": services,
        "bytes": total,
        "v": version,
    }


def _run(svc, version):
    return run_one(svc, version, "prod", end=END, window_seconds=3 * 3600, data_uri=None)


def test_a_window_above_the_threshold_starts_one_execution_named_after_it(window):
    sfn, version = window["sfn"], window["v"]
    svc = window["services"](window["bytes"] // 3)  # three batches of two files
    started = _run(svc, version)
    assert started["status"] == "started" and started["batches"] == 3 and started["bytes"] == window["bytes"]
    [execution] = sfn.list_executions(stateMachineArn=window["machine"])["executions"]
    assert execution["name"] == started["execution"]
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    execution_input = json.loads(described["input"])
    assert execution_input["plan"]["report_id"] == started["report_id"] and execution_input["plan"]["files"] == []
    listed = json.loads(
        window["s3"].get_object(**execution_input["batches"])["Body"].read()
    )  # the ItemReader's source, written by the tick
    assert [len(b["files"]) for b in listed] == [2, 2, 2]
    assert svc.publisher.events == []  # the tick read and reported nothing itself
    assert "Contents" not in window["s3"].list_objects_v2(Bucket=window["bucket"], Prefix="monitoring/reports/")

    # a retried tick (same window): still one execution (Step Functions returns the running one for the same
    # name and input)
    again = _run(svc, version)
    assert again["execution"] == started["execution"]
    assert len(sfn.list_executions(stateMachineArn=window["machine"])["executions"]) == 1

    # the execution played through the definition: the children's partials and the merge's report
    def merge(payload):
        outcome = MessageBus(svc, react=False).handle(merge_command(svc, payload))
        return {"status": outcome.status, "events": [e.name for e in outcome.events]}

    out = drive(
        window["s3"],
        execution_input,
        {"DriftPartialFunctionArn": lambda p: partial_reply(svc, p), "DriftMergeFunctionArn": merge},
    )
    assert out == {"status": "drift", "events": ["DriftDetected"]}
    # reported: the next tick finds the report and neither reads nor starts anything
    assert _run(svc, version)["status"] == "unchanged"


def test_an_ended_execution_is_not_started_again(window):
    sfn, version = window["sfn"], window["v"]
    svc = window["services"](window["bytes"] // 2)
    first = _run(svc, version)
    assert first["status"] == "started"
    [execution] = sfn.list_executions(stateMachineArn=window["machine"])["executions"]
    sfn.stop_execution(executionArn=execution["executionArn"])  # ended without a report (stopped by an operator)
    again = _run(svc, version)
    assert again["status"] == "unchanged" and again["execution"] == first["execution"]  # ExecutionAlreadyExists
    assert len(sfn.list_executions(stateMachineArn=window["machine"])["executions"]) == 1


def test_a_window_at_or_below_the_threshold_is_read_inline(window):
    sfn, version = window["sfn"], window["v"]
    svc = window["services"](window["bytes"])
    done = _run(svc, version)
    assert "execution" not in done and done["status"] == "drift"
    assert [e.name for e in done["events"]] == ["DriftDetected"]
    assert sfn.list_executions(stateMachineArn=window["machine"])["executions"] == []


def test_a_refused_start_is_a_typed_error(window):
    sfn = window["sfn"]
    starter = StepFunctionsFanOutStarter(
        window["machine"] + "-missing", lambda: sfn, min_bytes=1
    )  # no such state machine
    with pytest.raises(ModelPilotError, match="StartExecution"):
        starter.start("drift-m-prod-x", {"plan": {}})
