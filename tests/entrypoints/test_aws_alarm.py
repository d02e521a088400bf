"""Alarm function: CloudWatch alarm state changes (EventBridge) and SNS alarm actions, on moto."""

from __future__ import annotations

import json

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.audit import verify_chain
from modelpilot.domain.commands import PromoteModel, RegisterModel
from tests.support.aws import put_policy, upload_package
from tests.support.aws_events import LambdaContext, alarm_change, handler, handler_stack, load, sns_alarm

alarm = handler("alarm")


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def registry():
    return get_bus().services.registry


@pytest.fixture
def live(aws_stack, make_package):
    """churn v1 then v2 in prod (policy: dev → prod, alarms modelpilot/* roll prod back)."""
    put_policy(aws_stack)
    bus = get_bus()
    for n in (1, 2):
        key = upload_package(aws_stack, make_package("churn", auc=0.8 + n / 100), f"models/churn/v{n}")
        bus.handle(RegisterModel(package_uri=f"s3://{aws_stack.bucket}/{key[:-16]}", actor="system:test",
                                 auto_promote=True))
        bus.handle(PromoteModel(model="churn", environment="prod", actor="user:ops", version=n))
    assert registry().get_alias("churn", "prod").version == 2
    return aws_stack


def test_eventbridge_alarm_rolls_back_once_for_three_deliveries(live):
    event = alarm_change("modelpilot/churn/prod/error-rate")
    replies = [alarm(event, LambdaContext()) for _ in range(3)]
    assert replies[0] == replies[1] == replies[2]
    [result] = replies[0]["results"]
    assert result["status"] == "rolled_back" and result["version"] == 1
    assert registry().get_alias("churn", "prod").version == 1
    rollbacks = [r for r in registry().audit_records("churn") if r.action == "rollback"]
    assert len(rollbacks) == 1
    assert rollbacks[0].actor == "system:cloudwatch"
    assert rollbacks[0].trigger == "alarm:modelpilot/churn/prod/error-rate@2019-10-02T17:04:40.989+0000"
    assert verify_chain("churn", registry().audit_records("churn")).ok


def test_sns_wrapped_alarm_rolls_back(live):
    reply = alarm(sns_alarm("modelpilot/churn/prod/latency-p95"), LambdaContext())
    assert reply["results"][0]["status"] == "rolled_back"
    assert registry().get_alias("churn", "prod").version == 1


def test_rollback_notifies_humans_and_publishes(live):
    sns = live.client("sns")
    sqs = live.client("sqs")
    inbox = sqs.create_queue(QueueName="humans")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=live.topic_arn, Protocol="sqs", Endpoint=arn)
    alarm(alarm_change(), LambdaContext())
    messages = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10)["Messages"]
    bodies = [json.loads(m["Body"]) for m in messages]
    assert any(b["Subject"] == "[modelpilot] ModelRolledBack" and "churn" in b["Message"] for b in bodies)


def test_documented_sample_alarm_names_no_model_and_is_ignored(live):
    for event in (load("cloudwatch_alarm_state_change.json"), load("sns_cloudwatch_alarm.json")):
        reply = alarm(event, LambdaContext())
        assert reply["status"] == "ignored"
    assert registry().get_alias("churn", "prod").version == 2


def test_alarm_back_to_ok_changes_nothing(live):
    reply = alarm(alarm_change(state="OK", timestamp="2019-10-02T18:00:00.000+0000"), LambdaContext())
    assert reply["results"][0]["status"] == "noop"
    assert registry().get_alias("churn", "prod").version == 2


def test_unknown_model_changes_nothing_and_does_not_raise(aws_stack):
    put_policy(aws_stack)
    reply = alarm(alarm_change("modelpilot/ghost/prod/error-rate"), LambdaContext())
    [result] = reply["results"]
    # the rollback policy (SLO engine) answers with a typed UnknownModel or a skip: never a retry, never a write
    assert (result["status"], result.get("error", "unknown_model")) in {("failed", "unknown_model"),
                                                                       ("skipped", "unknown_model")}
    assert "ghost" in result["message"]
    assert registry().list_models() == [] and registry().audit_records("ghost") == []


@pytest.mark.parametrize("event", [
    {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "x"}},
    {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "not json"}}]},
    {"version": "0"},
])
def test_bad_shapes_are_typed_failures(aws_stack, event):
    reply = alarm(event, LambdaContext())
    assert reply["status"] == "failed" and reply["error"] == "invalid_event"


def test_sns_message_that_is_not_json_names_the_field(aws_stack):
    event = sns_alarm()
    event["Records"][0]["Sns"]["Message"] = "ALARM!"
    reply = alarm(event, LambdaContext())
    assert reply["error"] == "invalid_event" and "Sns.Message" in reply["message"]
