"""CloudWatchAlarmTags: an alarm's tags read with ListTagsForResource over HTTP (moto's server; an erroring
endpoint), and the alarm function's permission to read them in template.yaml."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelpilot.adapters.aws.alarm_tags import CloudWatchAlarmTags, parse_alarm_arn
from modelpilot.exceptions import ModelPilotError, TransientError
from tests.support.aws import REPO, client, moto_endpoint, template, unique
from tests.support.cloudwatch_errors import closed_port, cloudwatch_client, failing_cloudwatch


@pytest.fixture
def cloudwatch(request):
    return client("cloudwatch", moto_endpoint(request))


def put_alarm(cloudwatch, name: str, tags: dict[str, str] | None = None) -> str:
    """Create an alarm on moto and return its ARN as CloudWatch reports it."""
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
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return str(alarm["AlarmArn"])


def test_reads_the_tags_of_a_tagged_alarm(cloudwatch):
    arn = put_alarm(
        cloudwatch,
        unique("churn-prod-errors"),
        {"modelpilot:model": "churn", "modelpilot:environment": "prod", "team": "growth"},
    )
    tags = CloudWatchAlarmTags(cloudwatch)
    assert tags(arn) == {"modelpilot:model": "churn", "modelpilot:environment": "prod", "team": "growth"}
    assert tags.calls == 1


def test_an_untagged_alarm_has_no_tags(cloudwatch):
    tags = CloudWatchAlarmTags(cloudwatch)
    assert tags(put_alarm(cloudwatch, unique("cpu-high"))) == {}
    assert tags.calls == 1


def test_tags_changed_later_are_read_fresh(cloudwatch):
    arn = put_alarm(cloudwatch, unique("latency"), {"modelpilot:model": "churn"})
    tags = CloudWatchAlarmTags(cloudwatch)
    assert "modelpilot:environment" not in tags(arn)
    cloudwatch.tag_resource(ResourceARN=arn, Tags=[{"Key": "modelpilot:environment", "Value": "staging"}])
    assert tags(arn) == {"modelpilot:model": "churn", "modelpilot:environment": "staging"}


def test_alarms_of_another_region_are_not_looked_up(request):
    endpoint = moto_endpoint(request)
    elsewhere = cloudwatch_client(endpoint, region="us-east-2")
    arn = put_alarm(
        elsewhere, unique("churn-prod-errors"), {"modelpilot:model": "churn", "modelpilot:environment": "prod"}
    )
    assert ":us-east-2:" in arn
    tags = CloudWatchAlarmTags(client("cloudwatch", endpoint))  # this function's region: us-east-1
    assert tags(arn) == {}
    assert tags.calls == 0


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE",  # the documented SNS sample
        "arn:aws:sns:us-east-1:123456789012:alarms",
        "ServerCpuTooHigh",
        "",
    ],
)
def test_what_is_not_an_alarm_arn_is_not_looked_up(cloudwatch, arn):
    tags = CloudWatchAlarmTags(cloudwatch)
    assert tags(arn) == {}
    assert tags.calls == 0


def test_alarm_arns_keep_names_with_slashes_and_colons():
    parts = parse_alarm_arn("arn:aws-us-gov:cloudwatch:us-gov-west-1:123456789012:alarm:team/a:b c")
    assert parts is not None
    assert (parts.partition, parts.region, parts.account, parts.name) == (
        "aws-us-gov",
        "us-gov-west-1",
        "123456789012",
        "team/a:b c",
    )


def test_the_client_is_built_on_first_lookup_only(cloudwatch):
    built = []
    tags = CloudWatchAlarmTags(factory=lambda: built.append(1) or cloudwatch)
    assert built == []
    arn = put_alarm(cloudwatch, unique("lazy"), {"modelpilot:model": "churn"})
    assert tags(arn) == {"modelpilot:model": "churn"} and tags(arn) == {"modelpilot:model": "churn"}
    assert built == [1]


def test_needs_a_client_or_a_factory():
    with pytest.raises(ValueError, match="client or a factory"):
        CloudWatchAlarmTags()


@pytest.mark.parametrize(("status", "code"), [(400, "Throttling"), (503, None), (500, "InternalServiceFault")])
def test_throttling_and_server_errors_are_transient(status, code):
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-prod-errors"
    with failing_cloudwatch(status, code) as (cloudwatch, targets), pytest.raises(TransientError) as caught:
        CloudWatchAlarmTags(cloudwatch)(arn)
    assert caught.value.retryable
    assert "ListTagsForResource" in caught.value.message
    assert [t.rsplit(".", 1)[-1] for t in targets] == ["ListTagsForResource"]


def test_access_denied_is_permanent_and_names_the_alarm():
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-prod-errors"
    with failing_cloudwatch(400, "AccessDenied") as (cloudwatch, _paths), pytest.raises(ModelPilotError) as caught:
        CloudWatchAlarmTags(cloudwatch)(arn)
    assert not caught.value.retryable
    assert "AccessDenied" in caught.value.message and arn in caught.value.message


def test_an_alarm_deleted_before_the_lookup_has_no_tags():
    arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:deleted"
    with failing_cloudwatch(400, "ResourceNotFoundException") as (cloudwatch, targets):
        tags = CloudWatchAlarmTags(cloudwatch)
        assert tags(arn) == {}
    assert len(targets) == 1 and tags.calls == 1


def test_an_unreachable_endpoint_is_transient():
    tags = CloudWatchAlarmTags(cloudwatch_client(closed_port()))
    with pytest.raises(TransientError, match="cannot reach AWS"):
        tags("arn:aws:cloudwatch:us-east-1:123456789012:alarm:churn-prod-errors")


def test_importing_the_adapter_and_the_entrypoint_loads_no_boto3():
    # the entrypoint's Powertools parser models load botocore themselves; boto3 stays out of both
    code = (
        "import sys, modelpilot.adapters.aws.alarm_tags; a = 'botocore' in sys.modules; "
        "import modelpilot.entrypoints.aws.alarm; print([a, 'boto3' in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[False, False]"


def test_only_the_alarm_function_reads_alarm_tags_and_only_of_its_own_account_and_region():
    functions = {k: v for k, v in template()["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    readers = {}
    for name, fn in functions.items():
        for statement in (s for p in fn["Properties"]["Policies"] for s in p["Statement"]):
            if isinstance(statement, list):  # !If [condition, statement, !Ref AWS::NoValue]
                statement = statement[1]
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "cloudwatch:ListTagsForResource" in actions:
                readers[name] = (actions, statement["Resource"])
    assert readers == {
        "AlarmFunction": (
            ["cloudwatch:ListTagsForResource"],
            "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*",
        )
    }
    # a tagged alarm may have any name: the rule filters on the state only, never on the name
    pattern = functions["AlarmFunction"]["Properties"]["Events"]["AlarmStateChange"]["Properties"]["Pattern"]
    assert pattern["detail"] == {"state": {"value": ["ALARM"]}}
