"""The stories a user lives through on the deployed AWS stack, each a function of (stack, work folder, tag).

Every story names its models with ``tag`` and writes the policy its models need (the functions
read it on their next cold start), so a story can run again on the same stack: the permission
test (test_aws_permissions.py) reruns each story with one statement removed from a role.
Each returns the functions it invoked, which is how that test knows which stories a role serves.
Arrangement that is not the story itself (registering the versions an alarm story rolls between)
goes through an operator's bus; everything the story is about goes through the deployed functions.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from modelpilot.package.builder import write_package
from tests.stack.aws_harness import AwsStack, Invocation

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:iam::123456789012:user/bob"
FEATURES = [{"name": "x", "type": "numeric"}, {"name": "y", "type": "numeric"}]
#: the SageMaker job's output bucket, outside the model bucket (the stack's SageMakerArtifactBuckets parameter)
ARTIFACT_BUCKET = "sagemaker-jobs-output"

Story = Callable[[AwsStack, Path, str], None]


# -- helpers ------------------------------------------------------------------------------------
def package(
    work: Path,
    model: str,
    *,
    auc: float = 0.9,
    reference: bytes | None = None,
    features: list[dict[str, str]] | None = None,
) -> Path:
    """Write a package folder of ``model`` (with reference data and its ``features`` when given); return the folder."""
    files = {"model.bin": uuid.uuid4().bytes * 8}
    extra: dict[str, Any] = {}
    if reference is not None:
        files["reference.csv"] = reference
        extra = {"reference_data_uri": "reference.csv", "artifacts": ["model.bin"], "features": features or FEATURES}
    root = work / f"{model}-{uuid.uuid4().hex[:6]}"
    write_package(root, files=files, name=model, framework="numpy-logreg", metrics={"auc": auc}, **extra)
    return root


def upload_package(stack: AwsStack, root: Path, bucket: str, prefix: str) -> list[Invocation]:
    """Upload the package files, then the manifest (its "Object Created" event is the one that registers)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "modelpilot.json")
    for path in files:
        stack.client("s3").put_object(
            Bucket=bucket, Key=f"{prefix}/{path.relative_to(root).as_posix()}", Body=path.read_bytes()
        )
    return stack.upload(bucket, f"{prefix}/modelpilot.json", (root / "modelpilot.json").read_bytes())


def set_policy(stack: AwsStack, policy: dict[str, Any] | None) -> None:
    """Put modelpilot.yaml in the model bucket (None: delete it, the default policy applies); the functions read it
    on their next cold start, so a changed policy restarts them (an unchanged one keeps them warm)."""
    text = None if policy is None else yaml.safe_dump(policy, sort_keys=False)
    if stack.policy_text == text:
        return
    bucket = stack.output("ModelBucket")
    s3 = stack.client("s3")
    if text is None:  # every version, so the key is as absent as on a fresh stack
        listed = s3.list_object_versions(Bucket=bucket, Prefix="modelpilot.yaml")
        for entry in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
            if entry["Key"] == "modelpilot.yaml":
                s3.delete_object(Bucket=bucket, Key="modelpilot.yaml", VersionId=entry["VersionId"])
    else:
        s3.put_object(Bucket=bucket, Key="modelpilot.yaml", Body=text.encode())
    stack.policy_text = text
    stack.restart()


def reply_body(reply: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(reply.get("body") or "{}")
    return body


def only(invocations: list[Invocation], function: str) -> Invocation:
    found = [i for i in invocations if i.function == function]
    assert len(found) == 1, f"expected one invocation of {function}, got {[i.function for i in invocations]}"
    return found[0]


def live_version(stack: AwsStack, model: str, environment: str) -> int | None:
    reply = stack.http("GET", f"/models/{model}/status", caller=ALICE)
    assert reply["statusCode"] == 200, reply
    [row] = [r for r in reply_body(reply)["status"] if r["environment"] == environment]
    return row["version"]  # type: ignore[no-any-return]


BASE_POLICY: dict[str, Any] = {
    "version": 1,
    "environments": ["dev", "staging", "prod"],
    "defaults": {
        "environments": {
            "staging": {"thresholds": ["auc >= 0.8"]},
            "prod": {"soak": "2s", "approvals": 1},
        }
    },
}


def policy(**models: Any) -> dict[str, Any]:
    return {**BASE_POLICY, "models": models}


# -- the stories ------------------------------------------------------------------------------
def upload_to_prod(stack: AwsStack, work: Path, tag: str) -> None:
    """Upload → register → dev; staging through the operator API; prod after soak and another person's approval."""
    model = f"churn{tag}"
    set_policy(stack, policy())
    bucket = stack.output("ModelBucket")
    [upload] = upload_package(stack, package(work, model), bucket, f"models/{model}/2026-11-26")
    assert upload.statuses == ["registered"], upload
    assert upload.reply["results"][0]["promotion"]["status"] == "promoted"  # type: ignore[index]

    staged = stack.http("POST", f"/models/{model}/environments/staging/promote", {"version": 1}, caller=ALICE)
    assert staged["statusCode"] == 200, staged
    blocked = stack.http("POST", f"/models/{model}/environments/prod/promote", {"version": 1}, caller=ALICE)
    assert blocked["statusCode"] == 409, blocked
    failed = {g["gate"] for g in reply_body(blocked)["gate_report"]["gates"] if g["status"] == "failed"}
    assert {"soak", "approvals"} <= failed, failed
    approved = stack.http("POST", f"/models/{model}/versions/1/approve", {"environment": "prod"}, caller=BOB)
    assert approved["statusCode"] == 200, approved
    time.sleep(2.1)  # the soak time of prod (2 s) in staging
    promoted = stack.http("POST", f"/models/{model}/environments/prod/promote", {"version": 1}, caller=ALICE)
    assert promoted["statusCode"] == 200, promoted
    assert live_version(stack, model, "prod") == 1


def fresh_stack_default_policy(stack: AwsStack, work: Path, tag: str) -> None:
    """No modelpilot.yaml in the bucket: the default policy applies, and a version goes all the way to prod."""
    model = f"fresh{tag}"
    bucket = stack.output("ModelBucket")
    set_policy(stack, None)
    assert "Contents" not in stack.client("s3").list_objects_v2(Bucket=bucket, Prefix="modelpilot.yaml")
    [upload] = upload_package(stack, package(work, model), bucket, f"models/{model}/v1")
    assert upload.statuses == ["registered"], upload
    for environment in ("staging", "prod"):
        reply = stack.http("POST", f"/models/{model}/environments/{environment}/promote", {"version": 1}, caller=ALICE)
        assert reply["statusCode"] == 200, reply
    assert live_version(stack, model, "prod") == 1


def sagemaker_approved(stack: AwsStack, work: Path, tag: str, *, artifact_bucket: str = ARTIFACT_BUCKET) -> None:
    """A model package whose artifacts are in the SageMaker job's bucket: pending, then approved and in dev; then its
    lifecycle stage Staging approved in SageMaker: in staging, and written back to the package; an operator's blocked
    promotion to prod written back too."""
    model = f"sm{tag}"
    set_policy(stack, None)  # the default policy: nothing gates dev
    root = package(work, model, reference=b"x,y\n" + b"".join(b"%d,%d\n" % (i, i % 7) for i in range(200)))
    prefix = f"{model}/training-job-1/output"
    for path in sorted(root.iterdir()):
        stack.client("s3").put_object(Bucket=artifact_bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
    stack.client("s3").put_object(Bucket=artifact_bucket, Key=f"{prefix}/model.tar.gz", Body=b"model archive")
    sagemaker = stack.client("sagemaker")
    sagemaker.create_model_package_group(ModelPackageGroupName=model)
    arn = sagemaker.create_model_package(
        ModelPackageGroupName=model,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "churn:1", "ModelDataUrl": f"s3://{artifact_bucket}/{prefix}/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    pending = only(stack.sagemaker_change(arn), "SageMakerRegistryFunction")
    assert pending.statuses == ["registered"], pending
    assert pending.reply is not None and pending.reply["events"][0]["status"] == "pending_approval", pending
    assert live_version(stack, model, "dev") is None
    sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    approved = only(stack.sagemaker_change(arn), "SageMakerRegistryFunction")
    assert approved.reply is not None and approved.reply["status"] == "approved_in_source", approved
    assert approved.reply["promotion"]["status"] == "promoted", approved
    assert live_version(stack, model, "dev") == 1
    assert "follow_ups" not in approved.reply, approved  # no sagemaker block: nothing is written back
    # SageMaker's stages map to the environments (staging's threshold holds), written back with the approval status
    # (moto's UpdateModelPackage clears ModelApprovalStatus when a call does not name it, and drops ModelLifeCycle)
    stages = {"Development": "dev", "Staging": "staging", "Production": "prod"}
    set_policy(stack, policy(**{model: {"sagemaker": {"stages": stages, "approval_status": True}}}))
    # a person moves the package to Staging in SageMaker: the function promotes it and writes that back
    written = {"version": 1, "arn": arn, "stage": "Staging", "status": "Approved"}
    lifecycle = {"Stage": "Staging", "StageStatus": "Approved", "StageDescription": "signed off"}
    staged = only(stack.sagemaker_change(arn, ModelLifeCycle=lifecycle), "SageMakerRegistryFunction")
    assert staged.reply is not None and staged.reply["results"][1]["status"] == "promoted", staged
    assert staged.reply["results"][1]["follow_ups"][0]["written"] == [written], staged
    assert live_version(stack, model, "staging") == 1
    assert sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    # an operator's promotion to prod is blocked (soak, approvals): the operator API writes Production/Rejected back
    blocked = stack.http("POST", f"/models/{model}/environments/prod/promote", {"version": 1}, caller=ALICE)
    assert blocked["statusCode"] == 409, blocked
    rejected = {**written, "stage": "Production", "status": "Rejected"}
    assert reply_body(blocked)["follow_ups"][0]["written"] == [rejected], blocked


def drift_timer(stack: AwsStack, work: Path, tag: str) -> None:
    """The drift timer reads the last full hour of captures, flags the drifted window and publishes DriftDetected."""
    import numpy as np

    model = f"drift{tag}"
    set_policy(
        stack,
        policy(**{model: {"drift": {"environments": ["dev"], "window": "1h"}}}),
    )
    rng = np.random.default_rng(7)
    header = "x,y\n"
    reference = header + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rng.normal(0, 1, (2000, 2)))
    bucket = stack.output("ModelBucket")
    [upload] = upload_package(stack, package(work, model, reference=reference.encode()), bucket, f"models/{model}/v1")
    assert upload.statuses == ["registered"], upload
    hour = (time.time() // 3600 - 1) * 3600  # the last full hour: the window the batch reads
    folder = time.strftime("%Y/%m/%d/%H", time.gmtime(hour))
    drifted = header + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rng.normal(3, 1, (2000, 2)))
    stack.client("s3").put_object(
        Bucket=bucket, Key=f"monitoring/captures/{model}/dev/{folder}/part-0.csv", Body=drifted.encode()
    )
    tap = stack.tap_bus()
    run = stack.fire_schedule("DriftBatchFunction")
    assert run.reply is not None and not run.errors, run
    published = [e for e in stack.drain(tap) if e.get("detail-type") == "DriftDetected"]
    assert [e["detail"]["model"] for e in published] == [model], published
    assert published[0]["detail"]["severity"] in {"warning", "critical"}


def drift_fan_out(stack: AwsStack, work: Path, tag: str) -> None:
    """A window above the stack's DriftFanOutBytes: the drift timer starts the drift state machine instead of reading
    it; the state machine's steps are then played with the definition's payloads (the harness runs no Step
    Functions): one DriftPartialFunction per batch, then DriftMergeFunction, which reports and publishes DriftDetected.
    """
    import numpy as np

    from tests.integration.aws.test_drift_state_machine import drive

    model = f"fanout{tag}"
    set_policy(stack, policy(**{model: {"drift": {"environments": ["dev"], "window": "1h"}}}))
    rng = np.random.default_rng(17)
    # twelve features: each batch's partial profile (about 390 kB) is larger than a child's reply may carry, so the
    # children write their partials under the window's prefix and the merge reads them back
    names = [f"f{i}" for i in range(12)]
    header = ",".join(names) + "\n"

    def rows(n: int, shift: float) -> str:
        return "".join(",".join(f"{v:.3f}" for v in row) + "\n" for row in rng.normal(shift, 1, (n, len(names))))

    reference = header + rows(2000, 0.0)
    bucket = stack.output("ModelBucket")
    features = [{"name": n, "type": "numeric"} for n in names]
    root = package(work, model, reference=reference.encode(), features=features)
    [upload] = upload_package(stack, root, bucket, f"models/{model}/v1")
    assert upload.statuses == ["registered"], upload
    hour = (time.time() // 3600 - 1) * 3600
    folder = time.strftime("%Y/%m/%d/%H", time.gmtime(hour))
    threshold = int(stack.parameters["DriftFanOutBytes"])
    size = 0
    for part in range(4):  # each file a bit under half the threshold: two files per batch, two batches
        body = (header + rows(threshold // 2 // 60, 3.0)).encode()[: threshold // 2 - 64]
        body = body[: body.rfind(b"\n") + 1]
        stack.client("s3").put_object(
            Bucket=bucket, Key=f"monitoring/captures/{model}/dev/{folder}/part-{part}.csv", Body=body
        )
        size += len(body)
    assert size > threshold
    tap = stack.tap_bus()
    run = stack.fire_schedule("DriftBatchFunction")
    assert run.reply is not None and not run.errors, run
    [started] = [r for r in run.reply["reports"] if r["model"] == model]
    assert started["status"] == "started" and started["batches"] == 2, started
    assert [e for e in stack.drain(tap) if e.get("detail-type") == "DriftDetected"] == []  # nothing read yet
    sfn = stack.client("stepfunctions")
    machine = stack.output("DriftFanOutStateMachine")
    [execution] = [
        e for e in sfn.list_executions(stateMachineArn=machine)["executions"] if e["name"] == started["execution"]
    ]
    execution_input = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])

    children: list[dict[str, Any]] = []

    def child(payload: dict[str, Any]) -> dict[str, Any]:
        children.append(payload)
        return stack.invoke("DriftPartialFunction", payload)

    merged = drive(
        stack.client("s3"),
        execution_input,
        {
            "DriftPartialFunctionArn": child,
            "DriftMergeFunctionArn": lambda payload: stack.invoke("DriftMergeFunction", payload),
        },
    )
    assert len(children) == 2 and merged["status"] == "drift", merged
    written = stack.client("s3").list_objects_v2(Bucket=bucket, Prefix=f"monitoring/partials/{model}/")
    assert len([o for o in written["Contents"] if o["Key"].endswith(".json") and "/results/" not in o["Key"]]) == 3
    # the batch list and the two batches' partials
    published = [e for e in stack.drain(tap) if e.get("detail-type") == "DriftDetected"]
    assert [e["detail"]["model"] for e in published] == [model], published
    assert published[0]["detail"]["report_id"] == started["report_id"], published


def generated_alarms_roll_back(stack: AwsStack, work: Path, tag: str) -> None:
    """`modelpilot slo rules --format cloudwatch` alarms, deployed, go to ALARM and prod rolls back."""
    from modelpilot.cli import main

    model = f"alarmed{tag}"
    endpoint = f"{model}-prod"
    document = policy(
        **{
            model: {
                "environments": {"prod": {"soak": 0, "approvals": 0}},
                "slos": [
                    {
                        "name": "availability",
                        "environment": "prod",
                        "objective": 0.99,
                        "sli": {
                            "kind": "ratio",
                            "source": "cloudwatch",
                            "template": "sagemaker_availability",
                            "endpoint_name": endpoint,
                        },
                    }
                ],
                "rollback": {"prod": {"alarms": [f"modelpilot/{model}/prod/*"]}},
            }
        }
    )
    policy_file = work / f"{model}.yaml"
    policy_file.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    out = work / f"{model}-alarms.json"
    code = main(
        [
            "slo",
            "rules",
            "--format",
            "cloudwatch",
            "--json",
            "--home",
            str(work / "home"),
            "--policy",
            str(policy_file),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    template = json.loads(out.read_text(encoding="utf-8"))
    _released(stack, work, model, 2, document)
    stack.deploy_alarm_template(template)
    now = time.time()
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    stack.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Value": 1000.0, "Timestamp": now - 60},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": 400.0, "Timestamp": now - 60},
        ],
    )
    routed = stack.evaluate_alarms()
    rollbacks = [
        i
        for i in routed
        if i.function == "AlarmFunction"
        and any(r.get("status") == "rolled_back" for r in (i.reply or {}).get("results", []))
    ]
    assert rollbacks, [(i.function, i.reply, i.errors) for i in routed]
    assert live_version(stack, model, "prod") == 1


def failed_event_parks_in_the_dlq(stack: AwsStack, work: Path, tag: str) -> None:
    """An event that fails on every attempt ends in the failure queue intact; the queue-depth alarm fires; a redrive works.

    The failure: a live claim on the event's business key that outlasts every retry (the story makes it with the
    port's longest lock, 900 s, as a run elsewhere would hold it; a timed-out invocation's own claim now expires
    with the invocation); every retry meets it (ConcurrencyConflict, which Lambda retries) until the retries run out.
    """
    from modelpilot.adapters.aws.idempotency import DynamoDbIdempotencyStore
    from modelpilot.entrypoints.aws import s3

    model = f"parked{tag}"
    set_policy(stack, policy())
    bucket = stack.output("ModelBucket")
    queue = stack.output("FailureQueue")
    sqs = stack.client("sqs")
    sqs.purge_queue(QueueUrl=queue)
    stack.evaluate_alarms()  # the queue-depth alarm starts from an empty queue
    root = package(work, model)
    prefix = f"models/{model}/v1"
    stack.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/model.bin", Body=(root / "model.bin").read_bytes())
    put = stack.client("s3").put_object(
        Bucket=bucket, Key=f"{prefix}/modelpilot.json", Body=(root / "modelpilot.json").read_bytes()
    )
    event = stack.s3_event(bucket, f"{prefix}/modelpilot.json", put)
    claims = DynamoDbIdempotencyStore(stack.output("IdempotencyTable"), stack.client("dynamodb"))
    key = s3.deliveries(event)[0].key
    assert key is not None and claims.begin(key) is None  # the timed-out attempt's claim

    [parked] = stack.put_event(event)
    parked.expected = True
    assert parked.dead_lettered and len(parked.errors) == 3 and "ConcurrencyConflict" in parked.errors[-1], parked
    stack.evaluate_alarms()  # before anyone reads the queue: the metric counts visible messages
    [alarm] = stack.client("cloudwatch").describe_alarms(AlarmNames=[f"{stack.name}-failure-queue-not-empty"])[
        "MetricAlarms"
    ]
    assert alarm["StateValue"] == "ALARM"
    assert alarm["AlarmActions"] == [stack.output("NotificationTopic")]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    )
    assert [json.loads(m["Body"]) for m in messages] == [event]
    assert "ConcurrencyConflict" in messages[0]["MessageAttributes"]["ErrorMessage"]["StringValue"]

    claims.release(key)  # the lock expired: an operator redrives the parked event
    redriven = stack.invoke_async("ModelUploadFunction", json.loads(messages[0]["Body"]))
    assert redriven.statuses == ["registered"], redriven
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
    stack.evaluate_alarms()


def _released(stack: AwsStack, work: Path, model: str, versions: int, document: dict[str, Any] | None) -> None:
    """Arrange: ``versions`` versions of ``model``, each promoted dev → staging → prod by a release engineer."""
    from modelpilot.domain.commands import PromoteModel, RegisterModel

    set_policy(stack, document)
    bus = stack.operator_bus()
    bucket = stack.output("ModelBucket")
    for n in range(1, versions + 1):
        root = package(work, model)
        prefix = f"models/{model}/v{n}"
        for path in sorted(root.iterdir()):
            stack.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
        assert (
            bus.handle(RegisterModel(package_uri=f"s3://{bucket}/{prefix}", actor="user:release")).status
            == "registered"
        )
        for environment in ("dev", "staging", "prod"):
            done = bus.handle(PromoteModel(model=model, environment=environment, actor="user:release", version=n))
            assert done.status == "promoted", done


def console_promote_and_rollback(stack: AwsStack, work: Path, tag: str) -> None:
    """`aws lambda invoke` of the promote and rollback functions: v2 to staging, then prod back from v2 to v1."""
    model = f"console{tag}"
    _released(stack, work, model, 1, None)  # the default policy: no gates
    bus = stack.operator_bus()
    bucket = stack.output("ModelBucket")
    from modelpilot.domain.commands import PromoteModel, RegisterModel

    root = package(work, model)
    for path in sorted(root.iterdir()):
        stack.client("s3").put_object(Bucket=bucket, Key=f"models/{model}/v2/{path.name}", Body=path.read_bytes())
    assert (
        bus.handle(RegisterModel(package_uri=f"s3://{bucket}/models/{model}/v2", actor="user:release")).status
        == "registered"
    )
    assert (
        bus.handle(PromoteModel(model=model, environment="dev", actor="user:release", version=2)).status == "promoted"
    )
    staged = stack.invoke(
        "PromoteFunction",
        {"action": "promote", "model": model, "environment": "staging", "version": 2, "reason": "console"},
    )
    assert staged["status"] == "promoted", staged
    promoted = stack.invoke(
        "PromoteFunction",
        {"action": "promote", "model": model, "environment": "prod", "version": 2, "reason": "console"},
    )
    assert promoted["status"] == "promoted", promoted
    rolled = stack.invoke(
        "RollbackFunction",
        {"action": "rollback", "model": model, "environment": "prod", "reason": "p95 latency doubled"},
    )
    assert rolled["status"] == "rolled_back", rolled
    assert live_version(stack, model, "prod") == 1


def slo_timer_rolls_back(stack: AwsStack, work: Path, tag: str) -> None:
    """The SLO timer reads CloudWatch, pages on the burn rate and rolls prod back (rollback.prod.on_slo_page)."""
    model = f"slo{tag}"
    endpoint = f"{model}-prod"
    slo = {
        "name": "availability",
        "environment": "prod",
        "objective": 0.99,
        "sli": {
            "kind": "ratio",
            "source": "cloudwatch",
            "template": "sagemaker_availability",
            "endpoint_name": endpoint,
        },
    }
    document = policy(
        **{
            model: {
                "environments": {"prod": {"soak": 0, "approvals": 0}},
                "slos": [slo],
                "rollback": {"prod": {"on_slo_page": True}},
            }
        }
    )
    _released(stack, work, model, 2, document)
    dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    now = time.time()
    stack.client("cloudwatch").put_metric_data(
        Namespace="AWS/SageMaker",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dims, "Value": 1000.0, "Timestamp": now - 120},
            {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": 400.0, "Timestamp": now - 120},
        ],
    )
    # the tick's time after the release (the check judges the version live at its scheduled time, in whole seconds)
    run = stack.fire_schedule("SloCheckFunction", at=datetime.now(UTC) + timedelta(seconds=1))
    assert run.reply is not None and not run.errors, run
    assert live_version(stack, model, "prod") == 1, run.reply


def quality_labels_arrive(stack: AwsStack, work: Path, tag: str) -> None:
    """Labels land late: the hourly quality tick judges one window, a label file landing judges its own window;
    both find the live version's accuracy broken, store the monitor status and publish QualityDegraded."""
    import numpy as np

    model = f"quality{tag}"
    set_policy(
        stack,
        policy(
            **{
                model: {
                    "quality": {
                        "environments": ["dev"],
                        "window": "1h",
                        "lookback": "3h",
                        "min_labelled_rows": 50,
                        "estimate": False,
                        "prediction_drift": False,
                        "thresholds": [{"metric": "accuracy", "min": 0.9}],
                    }
                }
            }
        ),
    )
    rng = np.random.default_rng(11)
    bucket = stack.output("ModelBucket")
    s3 = stack.client("s3")
    [upload] = upload_package(stack, package(work, model), bucket, f"models/{model}/v1")
    assert upload.statuses == ["registered"], upload
    last = int(time.time() // 3600 - 1) * 3600  # the last full hour: the window the tick judges
    for hour in (last - 3600, last):
        folder = time.strftime("%Y/%m/%d/%H", time.gmtime(hour))
        ids = [f"{hour}-{i}" for i in range(200)]
        scores = rng.random(200)
        captures = "inference_id,x,y,score\n" + "".join(
            f"{i},{a:.3f},{b:.3f},{s:.4f}\n"
            for i, a, b, s in zip(ids, rng.normal(size=200), rng.normal(size=200), scores)
        )
        s3.put_object(Bucket=bucket, Key=f"monitoring/captures/{model}/dev/{folder}/part-0.csv", Body=captures.encode())
        # labels disagree with the scores half of the time: accuracy near 0.5, below the policy's 0.9
        labels = "inference_id,label\n" + "".join(f"{i},{int(rng.random() < 0.5)}\n" for i in ids)
        key = f"monitoring/feedback/{model}/dev/{folder}/labels.csv"
        if hour == last:  # the tick's window: its labels were copied in before the tick, without an event
            s3.put_object(Bucket=bucket, Key=key, Body=labels.encode())
            continue
        earlier_key, earlier_labels = key, labels

    tap = stack.tap_bus()
    tick = stack.fire_schedule("QualityBatchFunction")
    assert tick.reply is not None and not tick.errors, tick
    [landed] = stack.upload(bucket, earlier_key, earlier_labels.encode())
    assert landed.function == "QualityFeedbackFunction" and not landed.errors, landed
    degraded = [e for e in stack.drain(tap) if e.get("detail-type") == "QualityDegraded"]
    assert [e["detail"]["model"] for e in degraded] == [model, model], degraded
    reports = s3.list_objects_v2(Bucket=bucket, Prefix=f"monitoring/quality/{model}/dev/")
    assert len([o for o in reports.get("Contents", []) if o["Key"].endswith(".json")]) >= 2, reports


def _mlflow_version(url: str, name: str, auc: float) -> tuple[str, str]:
    """A run logged with ``auc`` and a model file in the real MLflow server, registered as ``name``: (version, run)."""
    from mlflow import MlflowClient

    client = MlflowClient(url)
    run = client.create_run("0")
    client.log_metric(run.info.run_id, "auc", auc)
    client.log_text(run.info.run_id, "flavors: {}\n", "model/MLmodel")
    client.log_text(run.info.run_id, "weights " * 512, "model/weights.txt")
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return str(mv.version), run.info.run_id


def _mlflow_delivery(secret: str, name: str, version: str, run_id: str) -> tuple[bytes, dict[str, str]]:
    """The ``model_version.created`` delivery MLflow would send (tests/events' recorded shape, MLflow's own
    serialisation and signing function)."""
    from mlflow.webhooks.delivery import _generate_hmac_signature

    from tests.support.aws_events import load

    payload = load("mlflow_webhook_model_version_created.json")
    payload["data"].update(name=name, version=version, run_id=run_id, source=f"models:/{name}/{version}")
    body = json.dumps(payload).encode()
    headers = load("mlflow_webhook_model_version_created.headers.json")
    delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
    headers.update({"X-MLflow-Delivery-Id": delivery, "X-MLflow-Timestamp": stamp})
    headers["X-MLflow-Signature"] = _generate_hmac_signature(secret, delivery, stamp, body.decode())
    return body, headers


def mlflow_webhook(stack: AwsStack, work: Path, tag: str) -> None:
    """MLflow's signed ``model_version.created`` on the open route POST /mlflow/webhook: the function reads the
    signing secret from Secrets Manager, the version and its run from the real MLflow server, copies the artifacts
    into the model bucket and registers the version; a tampered delivery is refused with 401 and a replayed one
    registers nothing again (the idempotency table); the IAM routes still refuse unsigned requests."""
    model = f"mlflow{tag}"
    set_policy(stack, policy())
    secret = uuid.uuid4().hex
    secrets = stack.client("secretsmanager")
    name = stack.parameter("MlflowWebhookSecretName")
    try:
        secrets.create_secret(Name=name, SecretString=secret)
    except secrets.exceptions.ResourceExistsException:  # a rerun of the story on the same stack
        secrets.put_secret_value(SecretId=name, SecretString=secret)
    stack.restart()  # the function caches the secret for five minutes: a rerun's new secret needs a cold start
    version, run_id = _mlflow_version(stack.parameter("MlflowTrackingUri"), model, 0.91)
    body, headers = _mlflow_delivery(secret, model, version, run_id)
    registry = stack.operator_bus().services.registry
    s3, bucket = stack.client("s3"), stack.output("ModelBucket")

    tampered = body.replace(f'"version": "{version}"'.encode(), f'"version": "{int(version) + 1}"'.encode())
    assert tampered != body
    refused = stack.http_unsigned("POST", "/mlflow/webhook", tampered, headers)
    assert refused["statusCode"] == 401, refused
    assert "signature does not match" in reply_body(refused)["message"]
    assert registry.list_versions(model) == []
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"monitoring/mlflow/{model}/")
    forged = stack.http_unsigned("POST", "/mlflow/webhook", body, {**headers, "X-MLflow-Signature": "v1,AAAA"})
    assert forged["statusCode"] == 401 and registry.list_versions(model) == [], forged

    registered = stack.http_unsigned("POST", "/mlflow/webhook", body, headers)
    assert registered["statusCode"] == 200 and reply_body(registered)["status"] == "registered", registered
    [v1] = registry.list_versions(model)
    assert (v1.source, v1.external_id, v1.manifest.metrics) == ("mlflow", f"{model}/{version}", {"auc": 0.91})
    assert v1.manifest.lineage.run_id == run_id
    stored = s3.list_objects_v2(Bucket=bucket, Prefix=f"monitoring/mlflow/{model}/v{version}/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1] for o in stored} == {
        "MLmodel",
        "weights.txt",
        "mlflow-run.json",
        "modelpilot.json",
    }

    replayed = stack.http_unsigned("POST", "/mlflow/webhook", body, headers)
    assert replayed["statusCode"] == 200 and reply_body(replayed)["duplicate"] is True, replayed
    assert [v.version for v in registry.list_versions(model)] == [v1.version]
    # MLflow cannot sign SigV4: only this route is open; the operator API's routes refuse an unsigned request
    closed = stack.http_unsigned("POST", f"/models/{model}/environments/staging/promote", b"{}", {})
    assert closed["statusCode"] == 403, closed


def canary_ticks(stack: AwsStack, work: Path, tag: str) -> None:
    """Uploads promote into dev as canaries; operators pause and resume them through the API (a stale revision
    is refused with 409); after the interval one tick advances the healthy canary and aborts the failing one
    (CloudWatch per variant; the healthy one's drift metric reads its candidate's captures and reference profile);
    an operator promotes the first; the serving manifests follow each change."""
    good, bad = f"cgood{tag}", f"cbad{tag}"
    reference = b"x,y\n" + b"".join(b"%d,%d\n" % (i, i % 7) for i in range(200))

    def canary_policy(model: str) -> dict[str, Any]:
        sli = {
            "kind": "ratio",
            "source": "cloudwatch",
            "template": "sagemaker_availability",
            "endpoint_name": f"{model}-dev",
            "variant_name": "v$version",
        }
        steps = {"steps": [10, 50, 100], "interval": "1m", "min_samples": 100, "failure_limit": 0}
        analysis: list[dict[str, Any]] = [{"name": "availability", "threshold": 0.02, "sli": sli}]
        if model == good:
            analysis.append({"name": "drift", "kind": "drift"})
        return {"environments": {"dev": {"canary": {**steps, "analysis": analysis}}}}

    set_policy(stack, policy(**{good: canary_policy(good), bad: canary_policy(bad)}))
    bucket = stack.output("ModelBucket")
    for model in (good, bad):
        data = reference if model == good else None
        [first] = upload_package(stack, package(work, model, reference=data), bucket, f"models/{model}/v1")
        assert first.reply["results"][0]["promotion"]["status"] == "promoted", first.reply  # type: ignore[index]
        [second] = upload_package(stack, package(work, model, reference=data), bucket, f"models/{model}/v2")
        started = second.reply["results"][0]["promotion"]  # type: ignore[index]
        assert started["status"] == "canary_started" and started["canary"]["weight"] == 10, started
    started_at = time.time()

    status = stack.http("GET", f"/models/{good}/canaries/dev", caller=ALICE)
    assert status["statusCode"] == 200, status
    assert {k: reply_body(status)["canary"][k] for k in ("state", "weight", "revision")} == {
        "state": "running",
        "weight": 10,
        "revision": 1,
    }
    paused = stack.http("POST", f"/models/{good}/canaries/dev/pause", {"expected_revision": 1}, caller=BOB)
    assert (paused["statusCode"], reply_body(paused)["status"]) == (200, "paused"), paused
    stale = stack.http("POST", f"/models/{good}/canaries/dev/resume", {"expected_revision": 1}, caller=BOB)
    assert (stale["statusCode"], reply_body(stale)["current_revision"]) == (409, 2), stale
    resumed = stack.http("POST", f"/models/{good}/canaries/dev/resume", {"expected_revision": 2}, caller=BOB)
    assert (resumed["statusCode"], reply_body(resumed)["status"]) == (200, "resumed"), resumed
    unknown = stack.http("POST", f"/models/{good}/canaries/dev/restart", {}, caller=BOB)
    assert unknown["statusCode"] == 404, unknown

    early = stack.fire_schedule("CanaryTickFunction")  # before the interval: nothing is due
    assert early.reply is not None and not early.errors and early.reply["status"] == "unchanged", early

    # a minute of traffic per variant: the good model's candidate as healthy as its stable version, the bad one's not
    cloudwatch, now = stack.client("cloudwatch"), time.time()
    for model, errors in ((good, 0.0), (bad, 300.0)):
        for variant, failed in (("v1", 0.0), ("v2", errors)):
            dims = [{"Name": "EndpointName", "Value": f"{model}-dev"}, {"Name": "VariantName", "Value": variant}]
            cloudwatch.put_metric_data(
                Namespace="AWS/SageMaker",
                MetricData=[
                    {"MetricName": "Invocations", "Dimensions": dims, "Value": 1000.0, "Timestamp": now},
                    {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": failed, "Timestamp": now},
                ],
            )
    # the good candidate's captured inputs, in its version's folder below each hour of the step's window
    hours = {time.strftime("%Y/%m/%d/%H", time.gmtime(t)) for t in (started_at, started_at + 62, time.time() + 62)}
    for hour in hours:
        key = f"monitoring/captures/{good}/dev/{hour}/v2/capture-{tag}.csv"
        stack.client("s3").put_object(Bucket=bucket, Key=key, Body=reference)
    time.sleep(max(0.0, started_at + 62 - time.time()))  # the policy's interval (1m, its shortest) passes
    tick = stack.fire_schedule("CanaryTickFunction")
    assert tick.reply is not None and not tick.errors, tick
    [checked] = [c for c in tick.reply["canaries"] if c["model"] == good]
    drift = {c["metric"]: c for c in checked["analysis"]["comparisons"]}["drift"]
    assert drift["passed"] is True and drift["evidence"]["rows"] >= 200, drift
    states = {
        m: reply_body(stack.http("GET", f"/models/{m}/canaries/dev", caller=ALICE))["canary"] for m in (good, bad)
    }
    assert (states[good]["state"], states[good]["weight"]) == ("running", 50), states
    assert (states[bad]["state"], states[bad]["weight"]) == ("aborted", 0), states
    assert live_version(stack, bad, "dev") == 1

    promoted = stack.http("POST", f"/models/{good}/canaries/dev/promote", {"reason": "looks good"}, caller=BOB)
    assert promoted["statusCode"] == 200, promoted
    assert live_version(stack, good, "dev") == 2
    s3 = stack.client("s3")
    for model, weights in ((good, {"2": 100}), (bad, {"1": 100})):
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"monitoring/serving/{model}/dev.json")["Body"].read())
        assert manifest["weights"] == weights, manifest


#: every story, in an order that changes the policy file as few times as possible (each change is a cold start)
STORIES: dict[str, Story] = {
    "sagemaker_approved": sagemaker_approved,
    "console_promote_and_rollback": console_promote_and_rollback,
    "fresh_stack_default_policy": fresh_stack_default_policy,
    "upload_to_prod": upload_to_prod,
    "mlflow_webhook": mlflow_webhook,
    "failed_event_parks_in_the_dlq": failed_event_parks_in_the_dlq,
    "drift_timer": drift_timer,
    "drift_fan_out": drift_fan_out,
    "generated_alarms_roll_back": generated_alarms_roll_back,
    "slo_timer_rolls_back": slo_timer_rolls_back,
    "quality_labels_arrive": quality_labels_arrive,
    "canary_ticks": canary_ticks,
}

#: the functions each story invokes (the permission test reruns a role's stories without one of its statements)
STORY_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "upload_to_prod": ("ModelUploadFunction", "OperatorApiFunction"),
    "mlflow_webhook": ("MlflowWebhookFunction",),
    "sagemaker_approved": ("SageMakerRegistryFunction", "OperatorApiFunction"),
    "drift_timer": ("ModelUploadFunction", "DriftBatchFunction"),
    "drift_fan_out": ("ModelUploadFunction", "DriftBatchFunction", "DriftPartialFunction", "DriftMergeFunction"),
    "generated_alarms_roll_back": ("AlarmFunction", "OperatorApiFunction"),
    "failed_event_parks_in_the_dlq": ("ModelUploadFunction",),
    "console_promote_and_rollback": ("PromoteFunction", "RollbackFunction", "OperatorApiFunction"),
    "slo_timer_rolls_back": ("SloCheckFunction", "OperatorApiFunction"),
    "fresh_stack_default_policy": ("ModelUploadFunction", "OperatorApiFunction"),
    "quality_labels_arrive": ("ModelUploadFunction", "QualityBatchFunction", "QualityFeedbackFunction"),
    "canary_ticks": ("ModelUploadFunction", "OperatorApiFunction", "CanaryTickFunction"),
}
