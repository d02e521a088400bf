"""Real-shaped AWS events for the handler tests, built from the fixtures in tests/events.

Each builder loads a documented sample and changes only the values a test needs
(bucket, key, ARN, alarm name), so the shapes stay exactly as AWS sends them.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from modelpilot import bootstrap

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load(name: str) -> Any:
    """Return a fixture from tests/events."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@dataclass
class LambdaContext:
    """The context object Lambda passes to a handler (the attributes handlers and Powertools read)."""

    function_name: str = "modelpilot-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:modelpilot-test"
    log_group_name: str = "/aws/lambda/modelpilot-test"
    log_stream_name: str = "2026/11/26/[$LATEST]abcdef"
    identity: Any = None
    client_context: Any = None
    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def s3_notification(
    bucket: str,
    key: str,
    *,
    etag: str = "0123456789abcdef",
    sequencer: str = "0055AED6DCD90281E5",
    version_id: str | None = None,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """An S3 event notification with one record; the key is form-encoded as S3 does."""
    event = load("s3_object_created.json")
    record = event["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    obj = record["s3"]["object"]
    obj.update(key=quote_plus(key, safe="/"), eTag=etag, sequencer=sequencer)
    if version_id is not None:
        obj["versionId"] = version_id
    return event


def object_created(
    bucket: str,
    key: str,
    *,
    etag: str = "0123456789abcdef",
    sequencer: str = "006408CAD69598B05E",
    version_id: str | None = None,
) -> dict[str, Any]:
    """An EventBridge "Object Created" event."""
    event = load("eventbridge_s3_object_created.json")
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"].update(key=key, etag=etag, sequencer=sequencer)
    if version_id is not None:
        event["detail"]["object"]["version-id"] = version_id
    return event


def sagemaker_change(status: str, package_uri: str, *, version: int = 1) -> dict[str, Any]:
    """A SageMaker model package state change pointing at a ModelPilot package."""
    event = load("sagemaker_model_package_pending_modelpilot.json")
    arn = f"arn:aws:sagemaker:us-east-2:123456789012:model-package/churn-models/{version}"
    event["resources"] = [arn]
    event["detail"].update(
        ModelApprovalStatus=status,
        ModelPackageArn=arn,
        ModelPackageVersion=version,
        ModelPackageGroupName="churn-models",
    )
    event["detail"]["CustomerMetadataProperties"] = {"modelpilot:package": package_uri}
    return event


def alarm_change(
    name: str = "modelpilot/churn/prod/error-rate",
    *,
    state: str = "ALARM",
    timestamp: str = "2019-10-02T17:04:40.989+0000",
) -> dict[str, Any]:
    """An EventBridge "CloudWatch Alarm State Change"."""
    event = load("cloudwatch_alarm_state_change_modelpilot.json")
    event["detail"]["alarmName"] = name
    event["detail"]["state"].update(value=state, timestamp=timestamp)
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"]
    return event


def sns_alarm(
    name: str = "modelpilot/churn/prod/latency-p95",
    *,
    state: str = "ALARM",
    changed_at: str = "2015-06-03T17:43:27.123+0000",
) -> dict[str, Any]:
    """An SNS delivery of an alarm action's notification (``Sns.Message`` is a JSON string)."""
    event = load("sns_cloudwatch_alarm_modelpilot.json")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message.update(AlarmName=name, NewStateValue=state, StateChangeTime=changed_at)
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def http_request(
    method: str,
    path: str,
    body: Any = None,
    *,
    user_arn: str | None = "arn:aws:iam::123456789012:user/alice",
    request_id: str | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) request with IAM authorization."""
    event = copy.deepcopy(load("api_gateway_v2_iam_promote.json"))
    event["rawPath"] = path
    event["routeKey"] = event["requestContext"]["routeKey"] = "$default"
    event["requestContext"]["http"].update(method=method, path=path)
    event["requestContext"]["requestId"] = request_id or str(uuid.uuid4())
    event["pathParameters"] = {}
    event["body"] = json.dumps(body) if body is not None else None
    if user_arn is None:
        event["requestContext"]["authorizer"] = load("api_gateway_v2_http.json")["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"]["iam"]["userArn"] = user_arn
    return event


def scheduler_input(
    schedule: str = "modelpilot-drift",
    *,
    at: str = "2026-11-26T04:00:00Z",
    execution_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The input EventBridge Scheduler sends (the template's Input with context attributes filled in)."""
    event = load("eventbridge_scheduler_input.json")
    event.update(
        schedule_arn=f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{schedule}",
        scheduled_time=at,
        execution_id=execution_id or str(uuid.uuid4()),
        **extra,
    )
    return event


def handler(name: str) -> Any:
    """Return a Lambda handler of functions/aws, imported as Lambda imports it."""
    import importlib

    return importlib.import_module(f"functions.aws.{name}").handler


def handler_stack(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Yield a stack on moto, with the function environment template.yaml sets; the bus rebuilt for it.

    Test modules wrap it in their ``aws_stack`` fixture.
    """
    from tests.support.aws import create_stack, stack_environment

    stack = create_stack(request)
    for name, value in stack_environment(stack).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "MODELPILOT_POLICY", "MODELPILOT_HOME", "POWERTOOLS_IDEMPOTENCY_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    bootstrap.reset()
    yield stack
    bootstrap.reset()


def first_reply_again(replies: list[dict[str, Any]]) -> bool:
    """True when every later reply is the first one answered again from the idempotency store.

    The first reply is the handler's own; a redelivery's reply is the stored result marked
    ``"duplicate": true`` (per delivery, inside ``results`` for batches).
    """

    def strip(reply: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        if "results" in reply:
            items = [strip(r) for r in reply["results"]]
            return {**reply, "results": [i for i, _ in items]}, all(d for _, d in items)
        rest = {k: v for k, v in reply.items() if k != "duplicate"}
        return rest, reply.get("duplicate") is True

    first, first_dup = strip(replies[0])
    later = [strip(r) for r in replies[1:]]
    return not first_dup and all(r == first and dup for r, dup in later)
