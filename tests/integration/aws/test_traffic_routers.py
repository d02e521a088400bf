"""The AWS canary traffic routers over HTTP against moto's server (SageMaker endpoints, Lambda aliases).

What is proven how: moto implements ``DescribeEndpoint`` / ``UpdateEndpointWeightsAndCapacities`` and
``GetAlias`` / ``UpdateAlias`` with ``RoutingConfig``, so each split is sent by botocore (validated against
the service models) to moto and read back from it: the variant weights, the alias's primary version and
additional version weight, a no-op when the split is already in place (no update call), and moto's
refusals turned into typed errors naming the endpoint or function. Throttling, 5xx, access denied and an
endpoint still updating are answered by a botocore ``Stubber`` on a real client (moto does not produce
them). Not proven: how a real endpoint shifts traffic (instances, the time an update takes), nor Lambda's
own checks of the versions' configuration (moto does not compare them).
"""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest
from botocore.stub import Stubber

from modelpilot.adapters.aws.traffic import LambdaAliasRouter, SageMakerEndpointRouter
from modelpilot.domain.canary import TrafficSplit
from modelpilot.exceptions import InvalidInput, NotAuthorized, TransientError
from tests.support.aws import ACCOUNT, CREDENTIALS, REGION, client, moto_endpoint, unique


class Counting:
    """A client wrapper that counts the calls of each operation (to see that a no-op writes nothing)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __getattr__(self, name):
        method = getattr(self.inner, name)

        def call(**kwargs):
            self.calls.append(name)
            return method(**kwargs)

        return call


@pytest.fixture
def endpoint(request):
    sm = client("sagemaker", moto_endpoint(request))
    name = unique("churn-prod")
    role = f"arn:aws:iam::{ACCOUNT}:role/sagemaker"
    variants = []
    for version in (1, 2, 3):
        model = sm.create_model(
            ModelName=f"{name}-v{version}",
            ExecutionRoleArn=role,
            PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/churn:{version}"},
        )
        assert model["ModelArn"]
        variants.append(
            {
                "VariantName": f"v{version}",
                "ModelName": f"{name}-v{version}",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0 if version == 1 else 0.0,
            }
        )
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return name, sm


def weights(sm, name):
    variants = sm.describe_endpoint(EndpointName=name)["ProductionVariants"]
    # moto describes a variant never updated with its endpoint config's InitialVariantWeight only (0.0 as null)
    return {v["VariantName"]: v.get("CurrentWeight", v.get("InitialVariantWeight") or 0.0) for v in variants}


def split(stable=1, candidate=None, weight=0, model="churn", env="prod"):
    return TrafficSplit(model, env, stable, candidate, weight)


# -- SageMaker ---------------------------------------------------------------------------------
def test_sagemaker_sets_every_variant_weight_of_the_split(endpoint):
    name, sm = endpoint
    router = SageMakerEndpointRouter("churn", "prod", name, client=sm)
    router.apply(split(1, 2, 25))
    assert weights(sm, name) == {"v1": 75.0, "v2": 25.0, "v3": 0.0}
    router.apply(split(1, 2, 100))
    assert weights(sm, name) == {"v1": 0.0, "v2": 100.0, "v3": 0.0}
    router.apply(split(2))  # promoted: the candidate is the stable version
    assert weights(sm, name) == {"v1": 0.0, "v2": 100.0, "v3": 0.0}


def test_sagemaker_applying_the_split_in_place_sends_no_update(endpoint):
    name, sm = endpoint
    counting = Counting(sm)
    router = SageMakerEndpointRouter("churn", "prod", name, client=counting)
    router.apply(split(1, 3, 5))
    router.apply(split(1, 3, 5))
    assert counting.calls == [
        "describe_endpoint",
        "update_endpoint_weights_and_capacities",
        "describe_endpoint",
    ]
    assert weights(sm, name) == {"v1": 95.0, "v2": 0.0, "v3": 5.0}


def test_sagemaker_ignores_splits_of_other_canaries(endpoint):
    name, sm = endpoint
    counting = Counting(sm)
    SageMakerEndpointRouter("churn", "prod", name, client=counting).apply(split(1, 2, 50, env="staging"))
    SageMakerEndpointRouter("churn", "prod", name, client=counting).apply(split(1, 2, 50, model="fraud"))
    assert counting.calls == []
    assert weights(sm, name) == {"v1": 1.0, "v2": 0.0, "v3": 0.0}


def test_sagemaker_a_version_without_a_variant_is_invalid_input_naming_the_endpoint_and_changes_nothing(endpoint):
    name, sm = endpoint
    with pytest.raises(InvalidInput) as err:
        SageMakerEndpointRouter("churn", "prod", name, client=sm).apply(split(1, 4, 5))
    assert name in err.value.message and "v4" in err.value.message
    assert err.value.details["endpoint"] == name
    assert weights(sm, name) == {"v1": 1.0, "v2": 0.0, "v3": 0.0}


def test_sagemaker_the_variant_pattern_is_configuration(request):
    sm = client("sagemaker", moto_endpoint(request))
    name = unique("pattern")
    sm.create_model(ModelName=name, ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm", PrimaryContainer={"Image": "x"})
    variants = [
        {"VariantName": f"churn-{v}", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        for v in (1, 2)
    ]
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=variants)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    SageMakerEndpointRouter("churn", "prod", name, variant="churn-{version}", client=sm).apply(split(1, 2, 50))
    assert weights(sm, name) == {"churn-1": 50.0, "churn-2": 50.0}


def test_sagemaker_an_unknown_endpoint_is_invalid_input_naming_it(request):
    sm = client("sagemaker", moto_endpoint(request))
    with pytest.raises(InvalidInput) as err:
        SageMakerEndpointRouter("churn", "prod", "no-such-endpoint", client=sm).apply(split(1, 2, 5))
    assert "no-such-endpoint" in err.value.message


def stubbed(service):
    real = boto3.session.Session(region_name=REGION, **CREDENTIALS).client(service)
    return real, Stubber(real)


DESCRIBED = {
    "EndpointName": "ep",
    "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/ep",
    "EndpointConfigName": "ep",
    "EndpointStatus": "InService",
    "CreationTime": "2026-01-01T00:00:00Z",
    "LastModifiedTime": "2026-01-01T00:00:00Z",
    "ProductionVariants": [
        {"VariantName": "v1", "CurrentWeight": 1.0, "DesiredWeight": 1.0},
        {"VariantName": "v2", "CurrentWeight": 0.0, "DesiredWeight": 0.0},
    ],
}


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, TransientError),
        ("InternalFailure", 500, TransientError),
        ("AccessDeniedException", 400, NotAuthorized),
        ("ValidationException", 400, InvalidInput),
    ],
)
def test_sagemaker_errors_are_typed_and_name_the_endpoint(code, status, error):
    sm, stub = stubbed("sagemaker")
    stub.add_response("describe_endpoint", DESCRIBED, {"EndpointName": "ep"})
    stub.add_client_error(
        "update_endpoint_weights_and_capacities", service_error_code=code, http_status_code=status, service_message="no"
    )
    with stub, pytest.raises(error) as err:
        SageMakerEndpointRouter("churn", "prod", "ep", client=sm).apply(split(1, 2, 5))
    assert "ep" in err.value.message
    stub.assert_no_pending_responses()


def test_sagemaker_an_endpoint_still_updating_is_transient_and_sends_no_update():
    sm, stub = stubbed("sagemaker")
    stub.add_response("describe_endpoint", {**DESCRIBED, "EndpointStatus": "Updating"}, {"EndpointName": "ep"})
    with stub, pytest.raises(TransientError, match="Updating"):
        SageMakerEndpointRouter("churn", "prod", "ep", client=sm).apply(split(1, 2, 5))
    stub.assert_no_pending_responses()


def test_sagemaker_the_update_request_is_the_shape_the_service_model_accepts():
    sm, stub = stubbed("sagemaker")
    stub.add_response("describe_endpoint", DESCRIBED, {"EndpointName": "ep"})
    stub.add_response(
        "update_endpoint_weights_and_capacities",
        {"EndpointArn": DESCRIBED["EndpointArn"]},
        {
            "EndpointName": "ep",
            "DesiredWeightsAndCapacities": [
                {"VariantName": "v1", "DesiredWeight": 95.0},
                {"VariantName": "v2", "DesiredWeight": 5.0},
            ],
        },
    )
    with stub:
        SageMakerEndpointRouter("churn", "prod", "ep", client=sm).apply(split(1, 2, 5))
    stub.assert_no_pending_responses()


# -- Lambda ------------------------------------------------------------------------------------
@pytest.fixture
def function(request):
    endpoint = moto_endpoint(request)
    lam, iam = client("lambda", endpoint), client("iam", endpoint)
    role = iam.create_role(RoleName=unique("serve"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    name = unique("churn-serve")
    lam.create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": buffer.getvalue()}
    )
    published = []
    for i in range(3):
        lam.update_function_configuration(FunctionName=name, Description=f"model build {i}")
        published.append(lam.publish_version(FunctionName=name, Description=f"build {i}")["Version"])
    lam.create_alias(FunctionName=name, Name="prod", FunctionVersion=published[0])
    return name, lam, published


def alias(lam, name):
    found = lam.get_alias(FunctionName=name, Name="prod")
    return found["FunctionVersion"], (found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def test_lambda_routes_the_candidate_as_an_additional_version_weight(function):
    name, lam, published = function
    mapping = {"3": published[0], "4": published[1]}
    router = LambdaAliasRouter("churn", "prod", name, "prod", versions=mapping, client=lam)
    router.apply(split(3, 4, 25))
    assert alias(lam, name) == (published[0], {published[1]: 0.25})
    router.apply(split(3, 4, 100))
    assert alias(lam, name) == (published[1], {})
    router.apply(split(3))  # aborted: back to the stable version alone
    assert alias(lam, name) == (published[0], {})


def test_lambda_applying_the_split_in_place_sends_no_update(function):
    name, lam, published = function
    counting = Counting(lam)
    router = LambdaAliasRouter(
        "churn", "prod", name, "prod", versions={"1": published[0], "2": published[2]}, client=counting
    )
    router.apply(split(1, 2, 50))
    router.apply(split(1, 2, 50))
    assert counting.calls == ["get_alias", "update_alias", "get_alias"]
    assert alias(lam, name) == (published[0], {published[2]: 0.5})


def test_lambda_a_pattern_maps_versions_by_number(function):
    name, lam, published = function
    LambdaAliasRouter("churn", "prod", name, "prod", versions="{version}", client=lam).apply(
        split(int(published[0]), int(published[1]), 5)
    )
    assert alias(lam, name) == (published[0], {published[1]: 0.05})


def test_lambda_a_version_without_a_lambda_version_is_invalid_input_and_changes_nothing(function):
    name, lam, published = function
    counting = Counting(lam)
    with pytest.raises(InvalidInput, match="no Lambda version is mapped to churn version 9") as err:
        LambdaAliasRouter("churn", "prod", name, "prod", versions={"1": published[0]}, client=counting).apply(
            split(1, 9, 5)
        )
    assert err.value.details["function"] == name
    assert counting.calls == []
    assert alias(lam, name) == (published[0], {})


def test_lambda_an_unknown_function_is_invalid_input_naming_it(request):
    lam = client("lambda", moto_endpoint(request))
    with pytest.raises(InvalidInput) as err:
        LambdaAliasRouter("churn", "prod", "no-such-fn", "prod", versions="{version}", client=lam).apply(split(1, 2, 5))
    assert "no-such-fn" in err.value.message


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("TooManyRequestsException", 429, TransientError),
        ("ServiceException", 500, TransientError),
        ("ResourceConflictException", 409, TransientError),
        ("AccessDeniedException", 403, NotAuthorized),
        ("InvalidParameterValueException", 400, InvalidInput),
    ],
)
def test_lambda_errors_are_typed_and_name_the_function(code, status, error):
    lam, stub = stubbed("lambda")
    stub.add_response("get_alias", {"Name": "prod", "FunctionVersion": "1"}, {"FunctionName": "fn", "Name": "prod"})
    stub.add_client_error("update_alias", service_error_code=code, http_status_code=status, service_message="no")
    with stub, pytest.raises(error) as err:
        LambdaAliasRouter("churn", "prod", "fn", "prod", client=lam).apply(split(1, 2, 5))
    assert "fn" in err.value.message
    stub.assert_no_pending_responses()
