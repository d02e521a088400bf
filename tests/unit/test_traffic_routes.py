"""MODELPILOT_TRAFFIC_ROUTES: parsing, typed errors, and the routers each backend's wiring builds from it.

The wiring tests build the routers only (no client is made: routers build theirs on first use).
"""

from __future__ import annotations

import json

import pytest

from modelpilot.adapters.aws.traffic import LambdaAliasRouter, SageMakerEndpointRouter
from modelpilot.adapters.aws.wiring import traffic_routers as aws_routers
from modelpilot.adapters.azure.traffic import AzureMlEndpointRouter
from modelpilot.adapters.azure.wiring import traffic_routers as azure_routers
from modelpilot.adapters.routes import SETTING, parse_routes, serving_name
from modelpilot.config import Settings
from modelpilot.exceptions import InvalidInput
from tests.support.azureml_stub import WORKSPACE_ID, StaticToken

ROUTES = [
    {"router": "sagemaker", "model": "churn", "environment": "prod", "endpoint": "churn-prod"},
    {
        "router": "lambda",
        "model": "churn",
        "environment": "staging",
        "function": "churn-serve",
        "alias": "staging",
        "versions": {"3": "7"},
    },
    {
        "router": "azureml",
        "model": "churn",
        "environment": "prod",
        "endpoint": "churn-prod",
        "deployment": "d{version}",
    },
]


def settings(routes=None, **kw) -> Settings:
    return Settings.from_env({SETTING: json.dumps(ROUTES if routes is None else routes)}, **kw)


def test_the_setting_is_read_from_the_environment_and_unset_means_no_routes():
    assert settings().traffic_routes == json.dumps(ROUTES)
    assert Settings.from_env({}).traffic_routes is None
    assert parse_routes(None) == [] and parse_routes("  ") == []


def test_routes_are_parsed_and_filtered_by_router():
    routes = parse_routes(json.dumps(ROUTES))
    assert [(r.router, r.model, r.environment) for r in routes] == [
        ("sagemaker", "churn", "prod"),
        ("lambda", "churn", "staging"),
        ("azureml", "churn", "prod"),
    ]
    assert routes[1].target == {"function": "churn-serve", "alias": "staging", "versions": {"3": "7"}}
    assert [r.router for r in parse_routes(json.dumps(ROUTES), routers=frozenset({"azureml"}))] == ["azureml"]
    assert serving_name("v{version}", 12) == "v12"


@pytest.mark.parametrize(
    ("routes", "problem"),
    [
        ("{not json", "is not JSON"),
        ('{"router": "sagemaker"}', "must be a JSON list"),
        ('["sagemaker"]', "entry 0: must be an object"),
        ('[{"router": "gcp", "model": "m", "environment": "e"}]', "router 'gcp' is not one of"),
        ('[{"router": "sagemaker", "model": "m", "environment": "e"}]', "endpoint must be a name"),
        ('[{"router": "sagemaker", "model": "m", "environment": "e", "endpoint": "x", "port": 1}]', "unknown field"),
        (
            '[{"router": "sagemaker", "model": "m", "environment": "e", "endpoint": "x", "variant": "blue"}]',
            "variant must be a pattern holding {version}",
        ),
        (
            '[{"router": "lambda", "model": "m", "environment": "e", "function": "f", "alias": "a", "versions": "x"}]',
            "versions must be",
        ),
        (
            '[{"router": "lambda", "model": "m", "environment": "e", "function": "f", "alias": "a", '
            '"versions": {"1": "$LATEST"}}]',
            "published Lambda versions",
        ),
        (
            '[{"router": "azureml", "model": "m", "environment": "e", "endpoint": "x"},'
            ' {"router": "azureml", "model": "m", "environment": "e", "endpoint": "y"}]',
            "entry 1: a second azureml route",
        ),
    ],
)
def test_a_bad_setting_is_invalid_input_naming_the_setting(routes, problem):
    with pytest.raises(InvalidInput, match=SETTING) as err:
        parse_routes(routes)
    assert problem in err.value.message
    assert err.value.details["setting"] == SETTING


def test_the_aws_wiring_builds_the_sagemaker_and_lambda_routers_without_a_client():
    made: list[str] = []
    routers = aws_routers(settings(), lambda service: made.append(service))
    sagemaker, lam = routers
    assert isinstance(sagemaker, SageMakerEndpointRouter) and isinstance(lam, LambdaAliasRouter)
    assert (sagemaker.model, sagemaker.environment, sagemaker.endpoint, sagemaker.variant) == (
        "churn",
        "prod",
        "churn-prod",
        "v{version}",
    )
    assert (lam.function, lam.alias, lam.versions) == ("churn-serve", "staging", {"3": "7"})
    assert lam.lambda_version(3) == "7"
    assert made == []
    assert aws_routers(Settings(), lambda service: None) == []


def test_the_azure_wiring_builds_the_online_endpoint_routers_with_the_workspace():
    (router,) = azure_routers(settings(azure_ml_workspace_id=WORKSPACE_ID), StaticToken())
    assert isinstance(router, AzureMlEndpointRouter)
    assert (router.model, router.environment, router.endpoint, router.deployment) == (
        "churn",
        "prod",
        "churn-prod",
        "d{version}",
    )
    assert azure_routers(Settings(), StaticToken()) == []


def test_the_azure_wiring_needs_the_workspace_for_its_routes():
    with pytest.raises(InvalidInput, match="MODELPILOT_AZURE_ML_WORKSPACE_ID"):
        azure_routers(settings(), StaticToken())
    # AWS routes alone need no workspace on Azure
    assert azure_routers(settings(ROUTES[:2]), StaticToken()) == []


def test_bootstrap_hands_the_backend_routers_to_the_services(monkeypatch):
    from modelpilot.bootstrap import build_services

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = Settings(
        backend="aws", registry_table="t", model_bucket="b", aws_region="us-east-1", traffic_routes=json.dumps(ROUTES)
    )
    assert [type(r).__name__ for r in build_services(aws).traffic_routers] == [
        "SageMakerEndpointRouter",
        "LambdaAliasRouter",
    ]
    bare = Settings(backend="aws", registry_table="t", model_bucket="b", aws_region="us-east-1")
    assert build_services(bare).traffic_routers == []
