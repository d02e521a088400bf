"""The canary's traffic routers on a stack deployed with router parameters, each function under its own role.

The stories' stack (test_aws_stories.py) is deployed without ``TrafficRoutes``, so its roles hold no router
statement (the Conditions leave them out). This stack is deployed with a SageMaker endpoint and a Lambda
function named in ``CanarySageMakerEndpointArns`` / ``CanaryLambdaFunctionArns`` and routed by ``TrafficRoutes``:
an upload starts a canary (the upload function has no routes: the manifest only), the scheduled tick applies
the split to the endpoint's variants and the alias's routing, and an operator's abort through the API puts the
stable version back at 100 %. No call is refused, and each router statement of the tick's and the API's roles
is needed: without it, a call the story made would be refused (moto's IAM evaluator, resources scoped by
tests/stack/moto_server.py).
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest

from tests.stack.aws_harness import REGION, AwsStack, MotoProcess
from tests.stack.aws_stories import ALICE, BOB, package, policy, reply_body, set_policy, upload_package
from tests.stack.test_aws_stories import _permitted

ACCOUNT = "123456789012"
MODEL = "routed"
ENDPOINT = "routed-dev"
FUNCTION = "routed-serve"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{ENDPOINT}"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}"
ROUTES = [
    {"router": "sagemaker", "model": MODEL, "environment": "dev", "endpoint": ENDPOINT},
    {"router": "lambda", "model": MODEL, "environment": "dev", "function": FUNCTION, "alias": "dev"},
]


def _serving(stack: AwsStack) -> None:
    """The serving platforms the routes name: an endpoint with a variant per version, a function with an alias."""
    sm, lam, iam = stack.client("sagemaker"), stack.client("lambda"), stack.client("iam")
    role = iam.create_role(RoleName=f"routed-{uuid.uuid4().hex[:6]}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    variants = []
    for version in (1, 2):
        sm.create_model(ModelName=f"routed-v{version}", ExecutionRoleArn=role, PrimaryContainer={"Image": "serve"})
        variants.append(
            {
                "VariantName": f"v{version}",
                "ModelName": f"routed-v{version}",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0 if version == 1 else 0.0,
            }
        )
    sm.create_endpoint_config(EndpointConfigName=ENDPOINT, ProductionVariants=variants)
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=ENDPOINT)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    for build in (1, 2):  # published versions 1 and 2 serve ModelPilot versions 1 and 2 (the route's default pattern)
        lam.update_function_configuration(FunctionName=FUNCTION, Description=f"model v{build}")
        lam.publish_version(FunctionName=FUNCTION)
    lam.create_alias(FunctionName=FUNCTION, Name="dev", FunctionVersion="1")


@pytest.fixture(scope="module")
def routed_stack(harness_server: MotoProcess, tmp_path_factory: pytest.TempPathFactory) -> AwsStack:
    stack = AwsStack(
        harness_server,
        tmp_path_factory.mktemp("routed"),
        name=f"routed-{uuid.uuid4().hex[:6]}",
        parameters={
            "TrafficRoutes": json.dumps(ROUTES),
            "CanarySageMakerEndpointArns": ENDPOINT_ARN,
            "CanaryLambdaFunctionArns": FUNCTION_ARN,
        },
    )
    harness_server.relax_iam()
    _serving(stack)
    return stack.deploy()


def weights(stack: AwsStack) -> dict[str, float]:
    variants = stack.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["ProductionVariants"]
    return {v["VariantName"]: v.get("CurrentWeight", v.get("InitialVariantWeight") or 0.0) for v in variants}


def alias(stack: AwsStack) -> tuple[str, dict[str, float]]:
    found = stack.client("lambda").get_alias(FunctionName=FUNCTION, Name="dev")
    return found["FunctionVersion"], (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


@pytest.mark.timeout(900)
def test_the_tick_and_the_api_route_the_split_and_need_their_router_statements(routed_stack, tmp_path):
    stack = routed_stack
    stack.server.clear_calls()
    stack.server.clear_denials()
    canary = {"steps": [10, 50, 100], "interval": "10m"}
    set_policy(stack, policy(**{MODEL: {"environments": {"dev": {"canary": canary}}}}))
    bucket = stack.output("ModelBucket")
    for n in (1, 2):
        [upload] = upload_package(stack, package(tmp_path, MODEL), bucket, f"models/{MODEL}/v{n}")
        assert upload.statuses == ["registered"], upload
    assert weights(stack) == {"v1": 1.0, "v2": 0.0} and alias(stack) == ("1", {})  # the upload function routes nothing

    tick = stack.fire_schedule("CanaryTickFunction")  # nothing is due: the split is applied again
    assert tick.reply is not None and not tick.errors, tick
    assert weights(stack) == {"v1": 90.0, "v2": 10.0}
    assert alias(stack) == ("1", {"2": 0.1})

    aborted = stack.http("POST", f"/models/{MODEL}/canaries/dev/abort", {"reason": "routing test"}, caller=BOB)
    assert (aborted["statusCode"], reply_body(aborted)["status"]) == (200, "aborted"), aborted
    assert reply_body(aborted)["routing"] == {"applied": 2, "failed": []}
    assert weights(stack) == {"v1": 100.0, "v2": 0.0}
    assert alias(stack) == ("1", {})
    status = stack.http("GET", f"/models/{MODEL}/canaries/dev", caller=ALICE)
    assert reply_body(status)["canary"]["state"] == "aborted"
    assert not stack.server.denials(), stack.server.denials()

    calls = stack.server.calls()
    for function in ("CanaryTickFunction", "OperatorApiFunction"):
        key = stack.function(function).credentials["aws_access_key_id"]
        made = {(c["action"], c["resource"]) for c in calls if c["access_key"] == key}
        policies = stack.role_policy(function)
        for sid, resource in (("RouteSageMakerEndpoints", ENDPOINT_ARN), ("RouteLambdaAliases", FUNCTION_ARN)):
            reduced = [
                {**doc, "Statement": [s for s in doc["Statement"] if s.get("Sid") != sid]} for doc in policies.values()
            ]
            refused = sorted(c for c in made if not _permitted([d for d in reduced if d["Statement"]], *c))
            assert refused and all(r == resource for _, r in refused), (function, sid, refused)
