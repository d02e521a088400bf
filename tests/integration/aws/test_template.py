"""template.yaml: cfn-lint (with the SAM transform) and checkov pass; least privilege and failure handling hold."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.aws import REPO, template

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not path:
        pytest.fail(
            f"{name} is not installed: run 'make tools' (checkov goes to .tools/bin) and "
            "pip install -e '.[dev]' (cfn-lint)"
        )
    return str(path)


def functions() -> dict:
    return {k: v for k, v in template()["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def statements(fn: dict) -> list[dict]:
    """The policy statements of a function; a conditional one (``!If [cond, statement, !Ref AWS::NoValue]``)
    is taken with its condition true."""
    out = []
    for policy in fn["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            if isinstance(statement, list):  # !If loads as [condition, when true, when false]
                assert statement[2] == "AWS::NoValue", statement
                statement = statement[1]
            out.append(statement)
    return out


def test_cfn_lint_passes_with_the_serverless_transform():
    result = subprocess.run([_tool("cfn-lint"), "template.yaml"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_serverless_rules_report_nothing():
    """The serverless rules (cfn-lint-serverless) report nothing; the two checks switched off in the template say why
    (the function's DeadLetterQueue is its on-failure target; the failure queue is itself the dead-letter queue)."""
    result = subprocess.run(
        [_tool("cfn-lint"), "-a", "cfn_lint_serverless.rules", "--", "template.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ignored = {
        check
        for resource in template()["Resources"].values()
        for check in resource.get("Metadata", {}).get("cfn-lint", {}).get("config", {}).get("ignore_checks", [])
    }
    assert ignored == {"ES1007", "ES6000", "WS1002"}
    text = (REPO / "template.yaml").read_text(encoding="utf-8")
    for check in ignored:
        assert f"- {check}  # " in text, f"{check} is switched off without a reason"


def test_checkov_passes_and_every_skip_has_a_reason():
    result = subprocess.run(
        [_tool("checkov"), "-f", "template.yaml", "--framework", "cloudformation", "-o", "json", "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and not failed, failed
    assert summary["passed"] > 40
    for name, resource in template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_") and len(skip["comment"]) > 20, (name, skip)


def test_every_handler_module_exists_and_every_async_trigger_has_a_dead_letter_queue():
    for name, fn in functions().items():
        props = fn["Properties"]
        module = props["Handler"].split(".")[0]
        assert (REPO / "functions" / "aws" / f"{module}.py").is_file(), name
        assert props["DeadLetterQueue"]["Type"] == "SQS", name
        for event in props.get("Events", {}).values():
            if event["Type"] in {"EventBridgeRule", "ScheduleV2"}:
                assert "DeadLetterConfig" in event["Properties"] and "RetryPolicy" in event["Properties"], name


def test_policies_name_no_wildcard_actions_and_scope_resources():
    for name, fn in functions().items():
        for statement in statements(fn):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), (name, actions)
            if statement["Resource"] == "*":
                assert actions == ["cloudwatch:GetMetricData"], (name, actions)  # has no resource-level scope


#: functions that never touch the registry (the drift state machine's children read captures, write partials)
REGISTRY_FREE = {"DriftPartialFunction"}


def test_registry_writers_may_condition_check_for_transactions():
    for name, fn in functions().items():
        registry = [s for s in statements(fn) if s.get("Sid") == "RegistryReadWrite"]
        if name in REGISTRY_FREE:
            assert not registry and not any("dynamodb" in str(s["Action"]) for s in statements(fn)), name
            continue
        assert registry, name
        assert "dynamodb:ConditionCheckItem" in registry[0]["Action"]


def test_state_is_encrypted_versioned_and_recoverable():
    resources = template()["Resources"]
    for table in ("RegistryTable", "IdempotencyTable"):
        props = resources[table]["Properties"]
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
    bucket = resources["ModelBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["NotificationConfiguration"]["EventBridgeConfiguration"]["EventBridgeEnabled"] is True
    [deny] = resources["ModelBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    assert template()["Globals"]["Function"]["Runtime"] == "python3.12"


def test_operator_api_uses_iam_auth_and_schedules_pass_the_business_key():
    resources = template()["Resources"]
    assert resources["OperatorApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    for fn in ("DriftBatchFunction", "SloCheckFunction", "CanaryTickFunction"):
        schedule = resources[fn]["Properties"]["Events"]["Schedule"]
        assert schedule["Type"] == "ScheduleV2"
        payload = json.loads(schedule["Properties"]["Input"])
        assert payload["schedule_arn"] == "<aws.scheduler.schedule-arn>"
        assert payload["scheduled_time"] == "<aws.scheduler.scheduled-time>"


def test_only_the_mlflow_webhook_route_is_open_and_only_its_function_reads_the_signing_secret():
    from tests.stack.aws_harness import sam_translate

    translated = sam_translate({}, "artifacts")
    [api] = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    auth = {
        (method, path): next(iter((operation.get("security") or [{"NONE": []}])[0]))
        for path, methods in api["Properties"]["Body"]["paths"].items()
        for method, operation in methods.items()
    }
    assert {route for route, kind in auth.items() if kind != "AWS_IAM"} == {("post", "/mlflow/webhook")}
    assert auth[("post", "/mlflow/webhook")] == "NONE"  # MLflow's HMAC signature is the authentication
    readers = {
        name
        for name, fn in functions().items()
        for statement in statements(fn)
        if "secretsmanager:GetSecretValue" in str(statement["Action"]) and "Mlflow" in str(statement["Resource"])
    }
    assert readers == {"MlflowWebhookFunction"}
    webhook = functions()["MlflowWebhookFunction"]
    # the loader reads !Ref and !Sub as their argument
    assert webhook["Properties"]["Environment"]["Variables"]["MODELPILOT_MLFLOW_WEBHOOK_SECRET"] == (
        "MlflowWebhookSecretName"
    )
    [secret] = [s for s in statements(webhook) if s["Sid"] == "ReadMlflowWebhookSecret"]
    assert secret["Action"] == "secretsmanager:GetSecretValue"
    assert secret["Resource"].endswith(":secret:${MlflowWebhookSecretName}-??????")
    writes = [s for s in statements(webhook) if "s3:PutObject" in str(s["Action"])]
    assert [w["Resource"] for w in writes] == ["${ModelBucket.Arn}/monitoring/mlflow/*"]
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["MODELPILOT_MLFLOW_TRACKING_URI"] == "MlflowTrackingUri"


def _conditional(fn: dict) -> dict[str, list]:
    """The conditional statements of a function by Sid: ``[condition, statement, "AWS::NoValue"]``."""
    found = {}
    for policy in fn["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            if isinstance(statement, list):
                found[statement[1]["Sid"]] = statement
    return found


def test_canary_routers_are_granted_only_when_configured_and_only_on_the_configured_targets():
    resources, conditions = template()["Resources"], template()["Conditions"]
    # true only when the parameter names at least one ARN
    assert "CanarySageMakerEndpointArns" in json.dumps(conditions["HasSageMakerRouter"])
    assert "CanaryLambdaFunctionArns" in json.dumps(conditions["HasLambdaRouter"])
    routed = {}
    for name, fn in functions().items():
        found = _conditional(fn)
        routes = {sid: found[sid] for sid in ("RouteSageMakerEndpoints", "RouteLambdaAliases") if sid in found}
        if routes:
            routed[name] = routes
    assert set(routed) == {"CanaryTickFunction", "OperatorApiFunction"}
    for name, routes in routed.items():
        sagemaker, lam = routes["RouteSageMakerEndpoints"], routes["RouteLambdaAliases"]
        assert (sagemaker[0], sagemaker[2]) == ("HasSageMakerRouter", "AWS::NoValue")
        assert sagemaker[1]["Action"] == ["sagemaker:DescribeEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities"]
        assert sagemaker[1]["Resource"] == "CanarySageMakerEndpointArns"  # !Ref of the parameter
        assert (lam[0], lam[2]) == ("HasLambdaRouter", "AWS::NoValue")
        assert lam[1]["Action"] == ["lambda:GetAlias", "lambda:UpdateAlias"]
        assert lam[1]["Resource"] == "CanaryLambdaFunctionArns"
        assert resources[name]["Properties"]["Environment"]["Variables"]["MODELPILOT_TRAFFIC_ROUTES"] == "TrafficRoutes"
    # the serving manifests: one prefix, writable by every function that promotes or rolls back
    for name, fn in functions().items():
        serving = [st for st in statements(fn) if st["Sid"] == "WriteServingManifests"]
        if serving:
            assert serving[0]["Action"] == "s3:PutObject" and serving[0]["Resource"].endswith("/monitoring/serving/*")
