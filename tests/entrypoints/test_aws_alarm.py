"""Alarm function: CloudWatch alarm state changes (EventBridge) and SNS alarm actions, on moto.

Alarms map to a model by name (``modelpilot/<model>/<environment>/…``) or, named
otherwise, by their tags, read from moto's CloudWatch over HTTP.
"""

from __future__ import annotations

import json

import pytest

from modelpilot.adapters.aws.alarm_tags import CloudWatchAlarmTags
from modelpilot.bootstrap import get_bus
from modelpilot.domain.audit import verify_chain
from modelpilot.domain.commands import PromoteModel, RegisterModel
from modelpilot.exceptions import TransientError
from tests.support.aws import put_policy, unique, upload_package
from tests.support.aws_events import (
    LambdaContext,
    alarm_change,
    first_reply_again,
    handler,
    handler_stack,
    load,
    sns_alarm,
)
from tests.support.cloudwatch_errors import failing_cloudwatch

alarm = handler("alarm")

#: the test policy: prod rolls back on alarms named modelpilot/* and on the team's own churn-prod-* alarms
POLICY = """\
version: 1
environments: [dev, prod]
defaults:
  rollback:
    prod: {alarms: ["modelpilot/*", "churn-prod-*"]}
"""
TAGS = {"modelpilot:model": "churn", "modelpilot:environment": "prod"}


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def registry():
    return get_bus().services.registry


@pytest.fixture
def live(aws_stack, make_package):
    """churn v1 then v2 in prod (policy: dev → prod, alarms modelpilot/* and churn-prod-* roll prod back)."""
    put_policy(aws_stack, POLICY)
    bus = get_bus()
    for n in (1, 2):
        key = upload_package(aws_stack, make_package("churn", auc=0.8 + n / 100), f"models/churn/v{n}")
        bus.handle(
            RegisterModel(package_uri=f"s3://{aws_stack.bucket}/{key[:-16]}", actor="system:test", auto_promote=True)
        )
        bus.handle(PromoteModel(model="churn", environment="prod", actor="user:ops", version=n))
    assert registry().get_alias("churn", "prod").version == 2
    return aws_stack


def test_eventbridge_alarm_rolls_back_once_for_three_deliveries(live):
    event = alarm_change("modelpilot/churn/prod/error-rate")
    replies = [alarm(event, LambdaContext()) for _ in range(3)]
    assert first_reply_again(replies)
    [result] = replies[0]["results"]
    assert result["status"] == "rolled_back" and result["version"] == 1
    assert registry().get_alias("churn", "prod").version == 1
    rollbacks = [r for r in registry().audit_records("churn") if r.action == "rollback"]
    assert len(rollbacks) == 1
    assert rollbacks[0].actor == "system:cloudwatch"
    assert rollbacks[0].trigger == "alarm:modelpilot/churn/prod/error-rate#ALARM@2019-10-02T17:04:40.989+0000"
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
    assert (result["status"], result["error"]) == ("failed", "unknown_model")
    assert "ghost" in result["message"]
    assert registry().list_models() == [] and registry().audit_records("ghost") == []


def test_an_alarm_for_an_unknown_model_that_the_policy_matches_is_not_remembered(live):
    """Unknown models are answered one way: ``unknown_model``, no event published, no idempotency record."""
    from modelpilot.adapters.aws.idempotency import DynamoDbIdempotencyStore

    live.client("sqs").purge_queue(QueueUrl=live.queue_url)
    event = alarm_change("modelpilot/ghost/prod/error-rate")  # prod's rollback policy matches modelpilot/*
    replies = [alarm(event, LambdaContext()) for _ in range(2)]
    for reply in replies:
        [result] = reply["results"]
        assert (result["status"], result["error"], result.get("duplicate")) == ("failed", "unknown_model", None)
        assert reply["status"] == "failed"
    store = get_bus().services.idempotency
    assert isinstance(store, DynamoDbIdempotencyStore)
    items = live.client("dynamodb").scan(TableName=store.table)["Items"]
    assert [i for i in items if "ghost" in i["id"]["S"]] == []
    assert live.client("sqs").receive_message(QueueUrl=live.queue_url).get("Messages", []) == []


def test_an_ok_delivered_first_does_not_mask_an_alarm_with_the_same_timestamp(live):
    when = "2026-11-26T10:00:00.000+0000"
    ok = alarm(alarm_change(state="OK", timestamp=when), LambdaContext())
    assert ok["results"][0]["status"] == "noop"
    fired = alarm(alarm_change(state="ALARM", timestamp=when), LambdaContext())
    [result] = fired["results"]
    assert "duplicate" not in result and result["status"] == "rolled_back"
    assert registry().get_alias("churn", "prod").version == 1
    assert result["key"] == f"alarm:modelpilot/churn/prod/error-rate#ALARM@{when}"
    # and the same ALARM again is a duplicate
    assert alarm(alarm_change(state="ALARM", timestamp=when), LambdaContext())["results"][0]["duplicate"] is True


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "x"}},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "not json"}}]},
        {"version": "0"},
    ],
)
def test_bad_shapes_are_typed_failures(aws_stack, event):
    reply = alarm(event, LambdaContext())
    assert reply["status"] == "failed" and reply["error"] == "invalid_event"


def test_sns_message_that_is_not_json_names_the_field(aws_stack):
    event = sns_alarm()
    event["Records"][0]["Sns"]["Message"] = "ALARM!"
    reply = alarm(event, LambdaContext())
    assert reply["error"] == "invalid_event" and "Sns.Message" in reply["message"]


# -- alarms mapped by tags ------------------------------------------------------------------------------
def put_alarm(stack, name: str, tags: dict[str, str] | None = None) -> str:
    """Create a CloudWatch alarm on moto (tagged when ``tags``) and return its ARN."""
    cloudwatch = stack.client("cloudwatch")
    extra = {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
        **extra,
    )
    [found] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return str(found["AlarmArn"])


def eventbridge_alarm(name: str, arn: str, **kw) -> dict:
    event = alarm_change(name, **kw)
    event["resources"] = [arn]
    return event


def sns_wrapped_alarm(name: str, arn: str, **kw) -> dict:
    event = sns_alarm(name, **kw)
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["AlarmArn"] = arn
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def tag_reader() -> CloudWatchAlarmTags:
    return get_bus().services.alarm_tags


def idempotency_items(stack) -> list:
    return stack.client("dynamodb").scan(TableName=stack.idempotency_table)["Items"]


@pytest.mark.parametrize("deliver", [eventbridge_alarm, sns_wrapped_alarm], ids=["eventbridge", "sns"])
def test_tagged_alarm_rolls_back_once_for_three_deliveries(live, deliver):
    name = unique("churn-prod-error-rate")
    arn = put_alarm(live, name, {**TAGS, "team": "growth"})
    event = deliver(name, arn)
    replies = [alarm(event, LambdaContext()) for _ in range(3)]
    assert first_reply_again(replies)
    [result] = replies[0]["results"]
    assert (result["status"], result["version"]) == ("rolled_back", 1)
    assert registry().get_alias("churn", "prod").version == 1
    [rollback] = [r for r in registry().audit_records("churn") if r.action == "rollback"]
    assert rollback.actor == "system:cloudwatch" and rollback.environment == "prod"
    assert rollback.trigger.startswith(f"alarm:{name}#ALARM@")
    assert rollback.evidence["alarm"] == name and rollback.evidence["alarm_arn"] == arn
    assert rollback.evidence["mapped_by"] == "tags"
    assert verify_chain("churn", registry().audit_records("churn")).ok


def test_untagged_alarm_named_otherwise_is_ignored_and_writes_nothing(live):
    name = unique("churn-prod-cpu")
    arn = put_alarm(live, name)
    before = registry().audit_records("churn")
    for event in (eventbridge_alarm(name, arn), sns_wrapped_alarm(name, arn)):
        reply = alarm(event, LambdaContext())
        assert reply["status"] == "ignored"
        assert "modelpilot:model" in reply["results"][0]["message"]
    assert tag_reader().calls == 2  # its tags were read, and named no model
    assert registry().audit_records("churn") == before
    assert registry().get_alias("churn", "prod").version == 2
    assert idempotency_items(live) == []


def test_alarm_tagged_with_a_model_but_no_environment_is_ignored(live):
    name = unique("churn-prod-latency")
    arn = put_alarm(live, name, {"modelpilot:model": "churn", "modelpilot:environment": " "})
    reply = alarm(eventbridge_alarm(name, arn), LambdaContext())
    assert reply["status"] == "ignored"
    assert registry().get_alias("churn", "prod").version == 2 and idempotency_items(live) == []


def test_the_name_convention_wins_over_tags_and_no_tags_are_read(live):
    name = "modelpilot/churn/prod/error-rate"
    arn = put_alarm(live, name, {"modelpilot:model": "ghost", "modelpilot:environment": "dev"})
    reply = alarm(eventbridge_alarm(name, arn), LambdaContext())
    assert reply["results"][0]["status"] == "rolled_back"
    assert registry().get_alias("churn", "prod").version == 1
    [rollback] = [r for r in registry().audit_records("churn") if r.action == "rollback"]
    assert rollback.evidence["mapped_by"] == "name"
    assert tag_reader().calls == 0


def test_tagged_alarm_outside_the_rollback_policy_is_recorded_once(live):
    name = unique("latency-watch")  # not matched by the policy's alarms
    arn = put_alarm(live, name, TAGS)
    for _ in range(2):
        assert alarm(eventbridge_alarm(name, arn), LambdaContext())["results"][0]["status"] == "recorded"
    [record] = [r for r in registry().audit_records("churn") if r.action == "alarm"]
    assert record.evidence["mapped_by"] == "tags" and record.evidence["alarm_arn"] == arn
    assert registry().get_alias("churn", "prod").version == 2


def test_tagged_alarm_of_another_region_is_ignored(live):
    name = unique("churn-prod-error-rate")
    arn = put_alarm(live, name, TAGS).replace(":us-east-1:", ":eu-west-1:")
    reply = alarm(eventbridge_alarm(name, arn), LambdaContext())
    assert reply["status"] == "ignored" and tag_reader().calls == 0
    assert registry().get_alias("churn", "prod").version == 2


def test_throttled_tag_lookup_raises_for_a_retry_then_the_retry_rolls_back_once(live):
    name = unique("churn-prod-error-rate")
    arn = put_alarm(live, name, TAGS)
    event = eventbridge_alarm(name, arn)
    moto_reader = tag_reader()
    with failing_cloudwatch(400, "Throttling") as (throttled, targets):
        get_bus().services.alarm_tags = CloudWatchAlarmTags(throttled)
        with pytest.raises(TransientError):
            alarm(event, LambdaContext())
    assert len(targets) == 1
    assert registry().get_alias("churn", "prod").version == 2 and idempotency_items(live) == []
    get_bus().services.alarm_tags = moto_reader  # CloudWatch answers again: Lambda's retry
    for _ in range(2):
        assert alarm(event, LambdaContext())["results"][0]["status"] == "rolled_back"
    assert len([r for r in registry().audit_records("churn") if r.action == "rollback"]) == 1
