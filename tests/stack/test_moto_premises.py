"""What the stack harness assumes of moto, checked against moto itself (its plain server, IAM enforced).

Each test states one behaviour of moto 5 that tests/stack/moto_server.py or the harness works around
(docs/aws.md lists them). When moto changes one, its test fails: drop the workaround then.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def plain_moto() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail("moto's server did not start")
            time.sleep(0.1)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


def _client(endpoint: str, service: str, keys: dict[str, str] | None = None):
    keys = keys or {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
    return boto3.session.Session(region_name=REGION, **keys).client(service, endpoint_url=endpoint)


def _auth(endpoint: str, count: str) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth", data=count.encode(), method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(request, timeout=10).close()


def _user(endpoint: str, name: str, statements: list[dict]) -> dict[str, str]:
    iam = _client(endpoint, "iam")
    iam.create_user(UserName=name)
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


@pytest.fixture
def enforced(plain_moto):
    yield plain_moto
    _auth(plain_moto, "inf")


def test_moto_cloudformation_cannot_create_the_types_the_harness_creates_itself():
    from moto.cloudformation.parsing import get_model_map

    from tests.stack.aws_harness import UNSUPPORTED

    assert not UNSUPPORTED & set(get_model_map())
    assert {"AWS::Lambda::Function", "AWS::IAM::Role", "AWS::DynamoDB::Table", "AWS::Events::Rule"} <= set(
        get_model_map()
    )


def test_moto_does_not_answer_test_event_pattern(plain_moto):
    events = _client(plain_moto, "events")
    reply = events.test_event_pattern(EventPattern='{"source": ["aws.s3"]}', Event=json.dumps({"source": "aws.s3"}))
    assert "Result" not in reply


def test_moto_matches_wildcards_in_its_own_pattern_matcher():
    from moto.events.models import EventPattern

    pattern = EventPattern.load(json.dumps({"detail": {"key": [{"wildcard": "models/*/modelpilot.json"}]}}))
    assert pattern.matches_event({"detail": {"key": "models/churn/v1/modelpilot.json"}})
    assert not pattern.matches_event({"detail": {"key": "models/churn/v1/model.bin"}})


def test_plain_moto_refuses_a_table_scoped_grant_and_names_transactions_and_cloudwatch_its_own_way(enforced):
    ddb = _client(enforced, "dynamodb")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arn = f"arn:aws:dynamodb:{REGION}:123456789012:table/t"
    keys = _user(
        enforced,
        "scoped",
        [
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem"], "Resource": arn},
            {"Effect": "Allow", "Action": "cloudwatch:ListTagsForResource", "Resource": "*"},
        ],
    )
    _auth(enforced, "0")
    scoped = _client(enforced, "dynamodb", keys)
    with pytest.raises(ClientError, match="dynamodb:GetItem"):  # moto compares the Resource against "*"
        scoped.get_item(TableName="t", Key={"k": {"S": "a"}})
    put = {"Put": {"TableName": "t", "Item": {"k": {"S": "a"}}}}
    with pytest.raises(ClientError, match="dynamodb:TransactWriteItems"):  # not an IAM action on AWS
        scoped.transact_write_items(TransactItems=[put])
    alarm = f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:a"
    with pytest.raises(ClientError, match="monitoring:ListTagsForResource"):  # AWS says cloudwatch:
        _client(enforced, "cloudwatch", keys).list_tags_for_resource(ResourceARN=alarm)


def test_plain_moto_answers_404_for_a_missing_object_without_list_bucket_and_denies_conditioned_bucket_policies(
    enforced,
):
    s3 = _client(enforced, "s3")
    s3.create_bucket(Bucket="models-premise")
    s3.put_object(Bucket="models-premise", Key="present", Body=b"x")
    keys = _user(
        enforced, "reader", [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::models-premise/*"}]
    )
    _auth(enforced, "0")
    reader = _client(enforced, "s3", keys)
    with pytest.raises(ClientError) as missing:
        reader.get_object(Bucket="models-premise", Key="modelpilot.yaml")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"  # AWS: 403 AccessDenied without s3:ListBucket
    _auth(enforced, "inf")
    tls_only = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": "arn:aws:s3:::models-premise/*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    s3.put_bucket_policy(Bucket="models-premise", Policy=json.dumps(tls_only))
    _auth(enforced, "0")
    with pytest.raises(ClientError) as denied:  # moto cannot evaluate the condition: the Deny always applies
        reader.get_object(Bucket="models-premise", Key="present")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
