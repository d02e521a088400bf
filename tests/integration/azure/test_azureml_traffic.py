"""The Azure ML online endpoint traffic router against the recording Azure Resource Manager stand-in.

The stand-in (tests/support/azureml_stub.py) holds a managed online endpoint and its deployments in the
shape ``OnlineEndpoints_Get`` / ``OnlineDeployments_Get`` of api-version 2024-04-01 return, answers a PUT
by storing the body's properties, and records every request.

What this proves: the requests (method, path, api-version, bearer token); that the PUT sends back the
endpoint as read (location, identity, kind, tags, every property) with only ``traffic`` changed and the
read-only ``provisioningState`` / ``scoringUri`` / ``swaggerUri`` left out; that a split in place PUTs
nothing; that a version with no deployment, an unknown endpoint and an endpoint still updating change
nothing; the error mapping. What it cannot prove: the real service's validation of the PUT (for example
that the shares add up to 100, which the router guarantees itself) and its long-running operation.
"""

from __future__ import annotations

import json

import pytest

from modelpilot.adapters.azure.azureml_sync import API_VERSION
from modelpilot.adapters.azure.traffic import AzureMlEndpointRouter
from modelpilot.domain.canary import TrafficSplit
from modelpilot.exceptions import InvalidInput, NotAuthorized, TransientError
from tests.support.azureml_stub import WORKSPACE_ID, StandIn, StaticToken, azureml_stand_in


@pytest.fixture
def arm():
    with azureml_stand_in() as state:
        yield state


def router(arm: StandIn, **kw) -> AzureMlEndpointRouter:
    return AzureMlEndpointRouter("churn", "prod", StaticToken(), WORKSPACE_ID, "churn-prod", arm=arm.endpoint, **kw)


def split(stable=1, candidate=None, weight=0, env="prod"):
    return TrafficSplit("churn", env, stable, candidate, weight)


def traffic(arm: StandIn) -> dict[str, int]:
    return arm.resources[f"{WORKSPACE_ID}/onlineEndpoints/churn-prod"]["properties"]["traffic"]


def test_a_split_puts_the_endpoint_back_with_only_its_traffic_changed(arm):
    path = arm.add_endpoint("churn-prod", {"v1": 100}, ["v1", "v2"])
    before = json.loads(json.dumps(arm.resources[path]))
    router(arm).apply(split(1, 2, 25))
    get, get_deployment, put = arm.requests
    assert (get["method"], get["path"]) == ("GET", path)
    assert (get_deployment["method"], get_deployment["path"]) == ("GET", f"{path}/deployments/v2")
    assert (put["method"], put["path"]) == ("PUT", path)
    assert all(r["query"]["api-version"] == [API_VERSION] for r in arm.requests)
    assert all(r["auth"] == "Bearer stand-in-token" for r in arm.requests)
    sent = json.loads(put["body"])
    assert set(sent) == {"location", "identity", "kind", "tags", "properties"}
    assert {k: sent[k] for k in ("location", "identity", "kind", "tags")} == {
        k: before[k] for k in ("location", "identity", "kind", "tags")
    }
    read_only = {"provisioningState", "scoringUri", "swaggerUri"}
    expected = {k: v for k, v in before["properties"].items() if k not in read_only}
    expected["traffic"] = {"v1": 75, "v2": 25}
    assert sent["properties"] == expected
    assert traffic(arm) == {"v1": 75, "v2": 25}


def test_the_steps_to_promotion_and_an_abort(arm):
    arm.add_endpoint("churn-prod", {"v1": 100}, ["v1", "v2"])
    r = router(arm)
    r.apply(split(1, 2, 50))
    r.apply(split(1, 2, 100))
    assert traffic(arm) == {"v1": 0, "v2": 100}
    r.apply(split(1))  # an abort puts the stable version back alone
    assert traffic(arm) == {"v1": 100, "v2": 0}


def test_a_split_in_place_puts_nothing(arm):
    arm.add_endpoint("churn-prod", {"v1": 95, "v2": 5, "v0": 0}, ["v0", "v1", "v2"])
    router(arm).apply(split(1, 2, 5))
    assert [r["method"] for r in arm.requests] == ["GET"]


def test_splits_of_other_canaries_send_nothing(arm):
    arm.add_endpoint("churn-prod", {"v1": 100}, ["v1", "v2"])
    router(arm).apply(split(1, 2, 5, env="staging"))
    assert arm.requests == []


def test_the_deployment_pattern_is_configuration(arm):
    arm.add_endpoint("churn-prod", {"churn-1": 100}, ["churn-1", "churn-2"])
    router(arm, deployment="churn-{version}").apply(split(1, 2, 5))
    assert traffic(arm) == {"churn-1": 95, "churn-2": 5}


def test_a_version_without_a_deployment_is_invalid_input_naming_the_endpoint_and_changes_nothing(arm):
    arm.add_endpoint("churn-prod", {"v1": 100}, ["v1"])
    with pytest.raises(InvalidInput, match="deployment v2 of Azure ML online endpoint churn-prod") as err:
        router(arm).apply(split(1, 2, 5))
    assert err.value.details["endpoint"] == "churn-prod"
    assert [r["method"] for r in arm.requests] == ["GET", "GET"]
    assert traffic(arm) == {"v1": 100}


def test_an_unknown_endpoint_is_invalid_input_naming_it(arm):
    with pytest.raises(InvalidInput, match="churn-prod does not exist"):
        router(arm).apply(split(1, 2, 5))


def test_an_endpoint_still_updating_is_transient_and_changes_nothing(arm):
    arm.add_endpoint("churn-prod", {"v1": 100}, ["v1", "v2"], state="Updating")
    with pytest.raises(TransientError, match="Updating"):
        router(arm).apply(split(1, 2, 5))
    assert "PUT" not in [r["method"] for r in arm.requests]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (429, "TooManyRequests", TransientError),
        (409, "Conflict", TransientError),
        (503, "ServiceUnavailable", TransientError),
        (403, "AuthorizationFailed", NotAuthorized),
        (400, "BadArgument", InvalidInput),
    ],
)
def test_errors_of_the_put_are_typed_and_name_the_endpoint(arm, status, code, error):
    arm.add_endpoint("churn-prod", {"v1": 100}, ["v1", "v2"])
    r = router(arm)
    r.apply(split(1, 2, 5))  # both resources read once: the next apply reads the endpoint, then PUTs
    arm.requests.clear()
    real = arm.answer

    def answer(method, path, query, headers, body):
        if method == "PUT":
            arm.fail.append((status, code))
        return real(method, path, query, headers, body)

    arm.answer = answer  # type: ignore[method-assign]
    with pytest.raises(error) as err:
        r.apply(split(1, 2, 50))
    assert "churn-prod" in err.value.message
    if error is NotAuthorized:
        assert "onlineEndpoints/write" in err.value.message
    assert traffic(arm) == {"v1": 95, "v2": 5}


def test_an_unreachable_arm_is_transient():
    r = AzureMlEndpointRouter("churn", "prod", StaticToken(), WORKSPACE_ID, "churn-prod", arm="http://127.0.0.1:9")
    with pytest.raises(TransientError, match="unreachable"):
        r.apply(split(1, 2, 5))


def test_a_workspace_id_that_is_not_one_is_invalid_input():
    with pytest.raises(InvalidInput, match="MODELPILOT_AZURE_ML_WORKSPACE_ID"):
        AzureMlEndpointRouter("churn", "prod", StaticToken(), "/subscriptions/x", "churn-prod")
