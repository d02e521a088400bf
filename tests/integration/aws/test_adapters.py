"""AWS adapters over HTTP against moto: EventBridge, SNS, secrets, S3 encryption and write-once, wiring."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.exceptions import ClientError

from modelpilot.adapters.aws._errors import translate
from modelpilot.adapters.aws.artifacts import S3ArtifactStore
from modelpilot.adapters.aws.events import EventBridgePublisher, SnsNotifier
from modelpilot.adapters.aws.registry import DynamoDbRegistry
from modelpilot.adapters.aws.secrets import PowertoolsSecrets
from modelpilot.bootstrap import build_services
from modelpilot.config import Settings
from modelpilot.domain.events import ModelPromoted, ModelRegistered
from modelpilot.exceptions import AlreadyExists, InvalidInput, ModelPilotError, NotFound, TransientError
from tests.support.aws import REGION, create_stack, put_policy

TRACEPARENT = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"


@pytest.fixture
def stack(request):
    return create_stack(request)


def drain(stack):
    sqs, found = stack.client("sqs"), []
    while batch := sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get("Messages", []):
        found += [json.loads(m["Body"]) for m in batch]
    return found


def test_eventbridge_publisher_batches_and_carries_the_traceparent(stack):
    publisher = EventBridgePublisher(stack.event_bus, stack.client("events"))
    events = [ModelRegistered("churn", n, "d" * 64, "alice", "registered") for n in range(1, 24)]
    publisher.publish(events, traceparent=TRACEPARENT)
    received = drain(stack)
    assert sorted(e["detail"]["version"] for e in received) == list(range(1, 24))  # 23 events: 3 PutEvents calls
    assert {e["detail-type"] for e in received} == {"ModelRegistered"}
    assert {e["detail"]["traceparent"] for e in received} == {TRACEPARENT}


class _FlakyEvents:
    """A PutEvents client that refuses entries (what FailedEntryCount reports)."""

    def __init__(self, fail_times):
        self.calls, self.fail_times = [], fail_times

    def put_events(self, Entries):
        self.calls.append(len(Entries))
        if len(self.calls) <= self.fail_times:
            return {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "ThrottlingException"}] + [{"EventId": "x"}] * (len(Entries) - 1),
            }
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"}] * len(Entries)}


def test_failed_entries_are_retried_once_then_raise_transient():
    event = ModelPromoted("churn", "prod", 2, 1, 3, "alice", "g" * 64)
    flaky = _FlakyEvents(fail_times=1)
    EventBridgePublisher("bus", flaky).publish([event, event, event])
    assert flaky.calls == [3, 1]
    broken = _FlakyEvents(fail_times=99)
    with pytest.raises(TransientError, match="ThrottlingException"):
        EventBridgePublisher("bus", broken).publish([event])


def test_missing_bus_is_a_permanent_error(stack):
    publisher = EventBridgePublisher("no-such-bus", stack.client("events"))
    with pytest.raises(ModelPilotError) as info:
        publisher.publish([ModelRegistered("churn", 1, "d" * 64, "alice", "registered")])
    assert "no-such-bus" in str(info.value) or "ResourceNotFound" in str(info.value)


def test_sns_notifier_publishes_with_a_valid_subject(stack):
    sqs, sns = stack.client("sqs"), stack.client("sns")
    inbox = sqs.create_queue(QueueName="inbox-notify")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn)
    SnsNotifier(stack.topic_arn, sns).notify(
        "[modelpilot] ModelRolledBack ✓ " + "x" * 200, "churn prod v2 -> v1", attributes={"event": "ModelRolledBack"}
    )
    [message] = sqs.receive_message(QueueUrl=inbox)["Messages"]
    body = json.loads(message["Body"])
    assert body["Message"] == "churn prod v2 -> v1"
    assert len(body["Subject"]) == 100 and body["Subject"].startswith("[modelpilot] ModelRolledBack ?")
    assert body["MessageAttributes"]["event"]["Value"] == "ModelRolledBack"


def test_secrets_from_parameter_store_and_secrets_manager(stack):
    ssm, sm = stack.client("ssm"), stack.client("secretsmanager")
    ssm.put_parameter(Name="/modelpilot/webhook-key", Value="s3cr3t", Type="SecureString")
    sm.create_secret(Name="modelpilot/api-token", SecretString="t0ken")
    secrets = PowertoolsSecrets(ssm, sm)
    assert secrets.get_secret("/modelpilot/webhook-key") == "s3cr3t"
    assert secrets.get_secret("ssm:/modelpilot/webhook-key") == "s3cr3t"
    assert secrets.get_secret("modelpilot/api-token") == "t0ken"
    assert secrets.get_secret("secretsmanager:modelpilot/api-token") == "t0ken"
    with pytest.raises(NotFound):
        secrets.get_secret("/modelpilot/missing")
    with pytest.raises(NotFound):
        secrets.get_secret("modelpilot/missing")


def test_s3_writes_are_encrypted_and_write_once_races_have_one_winner(stack):
    s3 = stack.client("s3")
    store = S3ArtifactStore(s3, sse="aws:kms")
    uri = store.write_bytes(f"s3://{stack.bucket}/monitoring/a.json", b"{}")
    assert s3.head_object(Bucket=stack.bucket, Key="monitoring/a.json")["ServerSideEncryption"] == "aws:kms"
    target = f"s3://{stack.bucket}/monitoring/report.json"
    wins, losses = [], []

    def write(i):
        try:
            store.write_bytes(target, f'{{"writer": {i}}}'.encode(), write_once=True)
            wins.append(i)
        except AlreadyExists:
            losses.append(i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(losses) == 5
    assert json.loads(store.read_bytes(target)) == {"writer": wins[0]}
    assert uri == f"s3://{stack.bucket}/monitoring/a.json"


def test_error_translation_keeps_retryable_and_permanent_apart():
    def error(code, status):
        return ClientError(
            {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
        )

    assert isinstance(translate(error("ProvisionedThroughputExceededException", 400), "x"), TransientError)
    assert isinstance(translate(error("ThrottlingException", 400), "x"), TransientError)
    assert isinstance(translate(error("InternalServerError", 500), "x"), TransientError)
    assert isinstance(translate(error("SlowDown", 503), "x"), TransientError)
    permanent = translate(error("AccessDeniedException", 400), "DynamoDB GetItem")
    assert not permanent.retryable and "AccessDeniedException" in permanent.message


def test_wiring_builds_aws_services_and_reads_the_policy_from_the_bucket(stack, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    put_policy(stack, "version: 1\nenvironments: [staging, prod]\n")
    settings = Settings(
        backend="aws",
        registry_table=stack.registry_table,
        model_bucket=stack.bucket,
        event_bus=stack.event_bus,
        topic_arn=stack.topic_arn,
        aws_endpoint_url=stack.endpoint,
        aws_region=REGION,
        idempotency_table=stack.idempotency_table,
    )
    services = build_services(settings)
    assert services.idempotency.begin("wiring-check") is None  # the port on the stack's idempotency table
    assert isinstance(services.registry, DynamoDbRegistry) and isinstance(services.artifacts, S3ArtifactStore)
    assert isinstance(services.publisher, EventBridgePublisher) and isinstance(services.notifier, SnsNotifier)
    assert services.policy.environments == ["staging", "prod"]
    assert services.data_root == f"s3://{stack.bucket}/monitoring"
    assert services.registry.list_models() == []
    services.artifacts.write_bytes(f"s3://{stack.bucket}/monitoring/x.json", b"{}")
    head = stack.client("s3").head_object(Bucket=stack.bucket, Key="monitoring/x.json")
    assert head["ServerSideEncryption"] == "aws:kms"  # the bucket's default encryption
    source = services.metrics_sources["cloudwatch"]  # the SLO engine's CloudWatch source, wired lazily
    assert type(source).__name__ == "CloudWatchMetricsSource" and source._client is None
    assert source.client.meta.endpoint_url == stack.endpoint  # built on first use by the shared client factory
    assert source.client is services.alarm_tags.client  # one client per service for the whole process
    with pytest.raises(InvalidInput, match="MODELPILOT_REGISTRY_TABLE"):
        build_services(Settings(backend="aws", aws_endpoint_url=stack.endpoint, aws_region=REGION))


def test_named_policy_that_is_missing_is_an_error_not_a_silent_default(stack, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = Settings(
        backend="aws",
        registry_table=stack.registry_table,
        model_bucket=stack.bucket,
        policy=f"s3://{stack.bucket}/policies/missing.yaml",
        aws_endpoint_url=stack.endpoint,
        aws_region=REGION,
    )
    with pytest.raises(ModelPilotError):
        build_services(settings).policy
    default = build_services(
        Settings(
            backend="aws",
            registry_table=stack.registry_table,
            model_bucket=stack.bucket,
            aws_endpoint_url=stack.endpoint,
            aws_region=REGION,
        )
    )
    assert default.policy.environments == ["dev", "staging", "prod"]
