"""The incident timeline from the operator APIs: JSON, the HTML page and the review draft, on AWS and on Azure."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.commands import PromoteModel, RegisterModel
from tests.support.aws import put_policy, upload_package
from tests.support.aws_events import LambdaContext, alarm_change, handler, handler_stack, http_request
from tests.support.azure_functions import AzureApp, host_event, load_event, user_function

POLICY = """\
version: 1
environments: [dev, prod]
defaults:
  rollback:
    prod: {alarms: ["modelpilot/*"]}
"""


@pytest.fixture
def aws_incident(request, monkeypatch, make_package):
    stack = next(handler_stack(request, monkeypatch))
    put_policy(stack, POLICY)
    bus = get_bus()
    for n in (1, 2):
        upload_package(stack, make_package("churn", auc=0.8 + n / 100), f"models/churn/v{n}")
        bus.handle(RegisterModel(f"s3://{stack.bucket}/models/churn/v{n}", actor="system:test", auto_promote=True))
        bus.handle(PromoteModel("churn", "prod", actor="user:ops", version=n))
    reply = handler("alarm")(alarm_change("modelpilot/churn/prod/error-rate"), LambdaContext())
    assert reply["results"][0]["status"] == "rolled_back"
    return stack


def get(path, **query):
    event = http_request("GET", path)
    event["queryStringParameters"] = query or None
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return handler("operator_api")(event, LambdaContext())


def test_aws_incident_route_answers_json_html_and_markdown(aws_incident):
    reply = get("/models/churn/environments/prod/incident")
    assert reply["statusCode"] == 200
    timeline = json.loads(reply["body"])["timeline"]
    [rollback] = timeline["rollbacks"]
    assert (rollback["from_version"], rollback["to_version"], rollback["evidence"]["alarm"]) == (
        2,
        1,
        "modelpilot/churn/prod/error-rate",
    )
    assert [s["version"] for s in timeline["versions"]] == [1, 2, 1]
    page = get("/models/churn/environments/prod/incident", format="html")
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert "<svg" in page["body"] and "modelpilot/churn/prod/error-rate" in page["body"]
    draft = get("/models/churn/environments/prod/incident", format="markdown")
    assert draft["body"].startswith("# Post-incident review (draft): churn in prod")


def test_aws_incident_route_refuses_bad_input(aws_incident):
    assert get("/models/churn/environments/prod/incident", format="pdf")["statusCode"] == 400
    assert get("/models/churn/environments/prod/incident", **{"from": "yesterday"})["statusCode"] == 400
    assert get("/models/ghost/environments/prod/incident")["statusCode"] == 404
    later, earlier = "2026-11-26T12:00:00Z", "2026-11-26T10:00:00Z"
    assert get("/models/churn/environments/prod/incident", **{"from": later, "to": earlier})["statusCode"] == 400


@pytest.fixture
def azure_incident(request, monkeypatch, tmp_path):
    app = AzureApp(
        request,
        monkeypatch,
        tmp_path,
        "environments: [dev, prod]\ndefaults:\n  rollback:\n    prod: {alarms: [churn-prod-feature-drift]}\n",
    )
    for n in (1, 2):
        app.upload_package(f"churn/v{n}", auc=0.8 + n / 100)
        app.bus.handle(RegisterModel(f"az://{app.container}/churn/v{n}", actor="alice@contoso.com"))
        app.bus.handle(PromoteModel("churn", "dev", actor="alice@contoso.com", version=n))
        app.bus.handle(PromoteModel("churn", "prod", actor="alice@contoso.com", version=n))
    user_function("azureml_monitor_alarm")(host_event(load_event("azureml_run_completed_monitor_breach.json")))
    yield app
    app.close()


def azure_get(params):
    request = func.HttpRequest(
        method="GET",
        url="https://modelpilot.azurewebsites.net/api/models/churn/environments/prod/incident",
        headers={},
        params=params,
        route_params={"model": "churn", "env": "prod"},
        body=b"",
    )
    return user_function("api_incident")(request)


def test_azure_incident_route_answers_json_html_and_markdown(azure_incident):
    assert azure_incident.registry.get_alias("churn", "prod").version == 1
    response = azure_get({})
    assert response.status_code == 200
    timeline = json.loads(response.get_body())["timeline"]
    assert [(r["from_version"], r["to_version"]) for r in timeline["rollbacks"]] == [(2, 1)]
    page = azure_get({"format": "html"})
    assert page.status_code == 200 and page.mimetype == "text/html" and b"<svg" in page.get_body()
    assert azure_get({"format": "markdown"}).get_body().startswith(b"# Post-incident review (draft)")
    assert azure_get({"format": "pdf"}).status_code == 400
