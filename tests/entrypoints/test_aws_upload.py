"""Model upload function: S3 notifications and EventBridge "Object Created" through the handler, on moto."""

from __future__ import annotations

import json

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.audit import verify_chain
from modelpilot.exceptions import TransientError
from tests.support.aws import put_policy, upload_package
from tests.support.aws_events import LambdaContext, handler, handler_stack, object_created, s3_notification

upload = handler("model_upload")


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def registry():
    return get_bus().services.registry


def bus_events(stack):
    """Drain the queue behind the catch-all rule on the stack's event bus."""
    sqs = stack.client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        found += [json.loads(m["Body"]) for m in batch]


def test_s3_notification_registers_and_promotes_to_first_environment(aws_stack, make_package):
    put_policy(aws_stack)
    key = upload_package(aws_stack, make_package("churn"), "models/churn/2026-11-26")
    reply = upload(s3_notification(aws_stack.bucket, key), LambdaContext())
    assert reply["status"] == "ok"
    [result] = reply["results"]
    assert result["status"] == "registered" and result["version"] == 1
    assert result["promotion"]["status"] == "promoted"
    assert registry().get_alias("churn", "dev").version == 1
    assert registry().get_version("churn", 1).package_uri == f"s3://{aws_stack.bucket}/models/churn/2026-11-26"
    published = bus_events(aws_stack)
    assert [e["detail-type"] for e in published] == ["ModelRegistered", "ModelPromoted"]
    assert all(e["source"] == "modelpilot" and "traceparent" in e["detail"] for e in published)


def test_eventbridge_object_created_shape_is_accepted(aws_stack, make_package):
    key = upload_package(aws_stack, make_package("fraud"), "models/fraud/v1")
    reply = upload(object_created(aws_stack.bucket, key), LambdaContext())
    assert reply["results"][0]["status"] == "registered"
    assert [v.version for v in registry().list_versions("fraud")] == [1]


def test_duplicate_delivery_three_times_registers_and_promotes_once(aws_stack, make_package):
    key = upload_package(aws_stack, make_package("churn"), "models/churn/v1")
    event = s3_notification(aws_stack.bucket, key, etag="etag-1")
    replies = [upload(event, LambdaContext()) for _ in range(3)]
    first, *again = (r["results"][0] for r in replies)
    assert "duplicate" not in first and all(r.pop("duplicate") is True for r in again)
    assert again == [first, first]  # a redelivery answers the stored result
    assert [v.version for v in registry().list_versions("churn")] == [1]
    assert len(registry().alias_history("churn", "dev")) == 1
    records = registry().audit_records("churn")
    assert [r.action for r in records] == ["register", "promote"]
    assert verify_chain("churn", records).ok
    assert [e["detail-type"] for e in bus_events(aws_stack)] == ["ModelRegistered", "ModelPromoted"]


def test_redelivery_with_other_event_id_but_same_object_is_still_one_registration(aws_stack, make_package):
    key = upload_package(aws_stack, make_package("churn"), "models/churn/v1")
    first = object_created(aws_stack.bucket, key, etag="etag-1")
    second = object_created(aws_stack.bucket, key, etag="etag-1")
    second["id"] = "another-event-id"
    upload(first, LambdaContext())
    assert upload(second, LambdaContext())["results"][0]["status"] == "registered"  # the stored first result
    assert len(registry().audit_records("churn")) == 2


def test_url_encoded_key_with_spaces_and_unicode_is_decoded(aws_stack, make_package):
    key = upload_package(aws_stack, make_package("churn"), "models/churn team/v1 größe+ñ")
    event = s3_notification(aws_stack.bucket, key)
    assert "+" in event["Records"][0]["s3"]["object"]["key"] and "%C3%B6" in event["Records"][0]["s3"]["object"]["key"]
    reply = upload(event, LambdaContext())
    assert reply["results"][0]["status"] == "registered"
    assert registry().get_version("churn", 1).package_uri == f"s3://{aws_stack.bucket}/models/churn team/v1 größe+ñ"


def test_s3_test_event_and_other_objects_are_ignored(aws_stack):
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-26T04:00:00.000Z",
        "Bucket": aws_stack.bucket,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3e",
    }
    assert upload(test_event, LambdaContext())["results"] == []
    reply = upload(s3_notification(aws_stack.bucket, "models/churn/v1/model.bin"), LambdaContext())
    assert reply["status"] == "ignored"
    assert registry().list_models() == []


def test_wrong_digest_is_a_typed_failure_and_writes_nothing(aws_stack, make_package):
    root = make_package("churn")
    good = (root / "model.bin").read_bytes()
    (root / "model.bin").write_bytes(b"tampered weights of another length")
    key = upload_package(aws_stack, root, "models/churn/v1")
    reply = upload(s3_notification(aws_stack.bucket, key, version_id="v-bad"), LambdaContext())
    assert reply["status"] == "failed"
    [result] = reply["results"]
    assert result["status"] == "failed" and result["error"] in {"digest_mismatch", "size_mismatch"}
    assert "model.bin" in result["message"]
    assert registry().list_models() == []
    assert bus_events(aws_stack) == []
    # the failure is remembered under the object version: a redelivery answers it without re-reading the package
    again = upload(s3_notification(aws_stack.bucket, key, version_id="v-bad"), LambdaContext())
    assert again["results"][0]["duplicate"] is True and again["results"][0]["error"] == result["error"]
    # the fixed package is a new object version: it registers
    (root / "model.bin").write_bytes(good)
    key = upload_package(aws_stack, root, "models/churn/v1")
    fixed = upload(s3_notification(aws_stack.bucket, key, version_id="v-fixed"), LambdaContext())
    assert fixed["results"][0]["status"] == "registered"


def test_same_size_wrong_digest(aws_stack, make_package):
    root = make_package("churn")
    data = (root / "model.bin").read_bytes()
    (root / "model.bin").write_bytes(bytes([data[0] ^ 1]) + data[1:])
    key = upload_package(aws_stack, root, "models/churn/v1")
    [result] = upload(s3_notification(aws_stack.bucket, key), LambdaContext())["results"]
    assert result["error"] == "digest_mismatch"
    assert registry().list_models() == []


def test_missing_manifest_object_is_a_typed_failure(aws_stack):
    [result] = upload(s3_notification(aws_stack.bucket, "models/ghost pkg/v1 ünï/modelpilot.json"), LambdaContext())[
        "results"
    ]
    assert result["status"] == "failed" and result["error"] == "manifest_missing"
    assert "models/ghost pkg/v1 ünï" in result["message"]  # the decoded key, not the form-encoded one
    assert registry().list_models() == []


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": "not a list"},
        {"Records": [{"eventName": "ObjectCreated:Put"}]},
        {"detail-type": "Object Created", "detail": {"bucket": {}}},
        ["not", "an", "object"],
    ],
)
def test_wrong_shapes_fail_without_raising_or_writing(aws_stack, event, capsys):
    context = LambdaContext()
    reply = upload(event, context)
    assert reply["status"] == "failed" and reply["error"] == "invalid_event"
    assert reply["message"]
    assert registry().list_models() == []
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    logged = [r for r in lines if r.get("log.level") == "error" and "rejected the event" in r.get("message", "")]
    assert logged and logged[0]["error"]["code"] == "invalid_event"  # ECS log line with the typed error
    assert logged[0]["faas"]["execution"] == context.aws_request_id and logged[0]["faas"]["name"] == "model_upload"
    emf = [r for r in lines if "_aws" in r]
    assert emf and emf[-1].get("Failed") == [1.0]  # the EMF metric CloudWatch extracts


def test_transient_errors_raise_so_lambda_retries(aws_stack, make_package, monkeypatch):
    key = upload_package(aws_stack, make_package("churn"), "models/churn/v1")
    from modelpilot.adapters.aws.registry import DynamoDbRegistry

    def throttled(self, *args, **kwargs):
        raise TransientError("DynamoDB is throttling (ProvisionedThroughputExceededException)")

    monkeypatch.setattr(DynamoDbRegistry, "find_version", throttled)
    with pytest.raises(TransientError):
        upload(s3_notification(aws_stack.bucket, key), LambdaContext())
    monkeypatch.undo()
    # the retry (same event) then succeeds: the failed attempt left no idempotency record behind
    from tests.support.aws import stack_environment

    for name, value in stack_environment(aws_stack).items():
        monkeypatch.setenv(name, value)
    assert upload(s3_notification(aws_stack.bucket, key), LambdaContext())["results"][0]["status"] == "registered"


def test_records_for_one_key_are_ordered_by_sequencer(aws_stack, make_package):
    old = upload_package(aws_stack, make_package("churn"), "models/churn/v1")
    late = s3_notification(aws_stack.bucket, old, sequencer="0055AED6DCD90281E6", etag="newer")
    early = s3_notification(aws_stack.bucket, old, sequencer="0055AED6DCD90281E5", etag="older")
    event = {"Records": late["Records"] + early["Records"]}
    reply = upload(event, LambdaContext())
    assert len(reply["results"]) == 1  # only the newest record of the key is handled
    assert registry().audit_records("churn")[0].trigger.endswith("#newer")


def test_upload_with_reference_data_builds_the_drift_profile_in_the_bucket(aws_stack, tmp_path):
    import random

    from modelpilot.package.builder import write_package

    rng = random.Random(7)
    rows = ["tenure_months,plan"] + [f"{rng.randint(0, 72)},{rng.choice(['basic', 'pro'])}" for _ in range(300)]
    root = tmp_path / "pkg"
    write_package(
        root,
        files={"model.bin": b"weights" * 100, "reference.csv": "\n".join(rows).encode()},
        name="churn",
        framework="numpy-logreg",
        metrics={"auc": 0.9},
        reference_data_uri="reference.csv",
        features=[
            {"name": "tenure_months", "type": "numeric", "minimum": 0},
            {"name": "plan", "type": "categorical", "allowed_values": ["basic", "pro"]},
        ],
    )
    key = upload_package(aws_stack, root, "models/churn/v1")
    [result] = upload(s3_notification(aws_stack.bucket, key), LambdaContext())["results"]
    assert result["status"] == "registered"
    profiles = aws_stack.client("s3").list_objects_v2(Bucket=aws_stack.bucket, Prefix="monitoring/profiles/churn/")
    assert [o["Key"] for o in profiles.get("Contents", [])] == ["monitoring/profiles/churn/v1/reference-profile.json"]


# -- a registered manifest delivered again; a policy that fails closed; a claim that ends with the invocation --
def dev_history():
    return [c.to_version for c in registry().alias_history("churn", "dev")]


def test_an_identical_reupload_under_a_new_key_does_not_move_dev_back(aws_stack, make_package):
    v1 = make_package("churn", auc=0.8)
    key1 = upload_package(aws_stack, v1, "models/churn/v1")
    key2 = upload_package(aws_stack, make_package("churn", auc=0.9), "models/churn/v2")
    for key in (key1, key2):
        assert upload(s3_notification(aws_stack.bucket, key), LambdaContext())["results"][0]["status"] == "registered"
    assert registry().get_alias("churn", "dev").version == 2
    late = upload_package(aws_stack, v1, "models/churn/v1-copy")  # the same manifest, another key
    [result] = upload(s3_notification(aws_stack.bucket, late, etag="copy"), LambdaContext())["results"]
    assert (result["status"], result["version"], result["promotion"]["status"]) == ("unchanged", 1, "unchanged")
    # a replay of v1's own event after its idempotency record expired (a new object version)
    [result] = upload(s3_notification(aws_stack.bucket, key1, version_id="replayed"), LambdaContext())["results"]
    assert result["promotion"]["status"] == "unchanged"
    assert registry().get_alias("churn", "dev").version == 2 and dev_history() == [1, 2]
    assert [e["detail-type"] for e in bus_events(aws_stack)].count("ModelPromoted") == 2


@pytest.mark.parametrize("text", ["", "# emptied by a bad deploy\n"])
def test_an_empty_policy_in_the_bucket_fails_closed_and_a_fix_lets_the_same_event_through(
    aws_stack, make_package, text, capsys
):
    put_policy(aws_stack, text)
    key = upload_package(aws_stack, make_package("churn"), "models/churn/v1")
    event = s3_notification(aws_stack.bucket, key)
    reply = upload(event, LambdaContext())
    assert reply["status"] == "failed"
    [result] = reply["results"]
    assert (result["status"], result["error"]) == ("failed", "invalid_policy") and "empty" in result["message"]
    assert registry().list_models() == []  # nothing registered, nothing promoted with the default policy
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{") and "_aws" in line]
    assert [e.get("Failed") for e in emf] == [[1.0]] and not any("Succeeded" in e for e in emf)
    put_policy(aws_stack)  # the operator fixes the policy; the redelivered event (same key) now runs
    get_bus().services.policy_loader.ttl_seconds = 0  # a warm worker after the TTL
    [again] = upload(event, LambdaContext())["results"]
    assert "duplicate" not in again and again["status"] == "registered"
    assert again["promotion"]["status"] == "promoted" and registry().get_alias("churn", "dev").version == 1


def test_the_policy_is_read_again_after_its_ttl_with_a_conditional_get(aws_stack, make_package):
    put_policy(
        aws_stack, "environments: [dev, prod]\ndefaults:\n  environments:\n    dev: {thresholds: ['auc >= 0.5']}\n"
    )
    loader = get_bus().services.policy_loader
    loader.ttl_seconds = 0  # check on every use: S3 answers 304 while the object is unchanged
    assert loader().gates_for("churn", "dev").thresholds[0].value == 0.5
    loader()
    assert loader.parses == 1  # the second read was a 304 Not Modified: nothing parsed
    put_policy(
        aws_stack, "environments: [dev, prod]\ndefaults:\n  environments:\n    dev: {thresholds: ['auc >= 0.95']}\n"
    )
    key = upload_package(aws_stack, make_package("churn", auc=0.9), "models/churn/v1")
    [result] = upload(s3_notification(aws_stack.bucket, key), LambdaContext())["results"]
    assert result["status"] == "registered" and result["promotion"]["status"] == "blocked"  # the tightened gate
    assert loader.parses == 2


def test_a_timed_out_invocation_leaves_a_claim_that_expires_with_the_invocation(aws_stack, make_package, monkeypatch):
    """The claim's lock is the invocation's remaining time (here 30 s), not 900 s: Lambda's retry (a minute later)
    claims the key again instead of meeting the dead attempt's claim until the event lands in the DLQ."""
    import modelpilot.adapters.aws.idempotency as idempotency
    from modelpilot.adapters.aws.registry import DynamoDbRegistry

    key = upload_package(aws_stack, make_package("churn"), "models/churn/v1")
    event = s3_notification(aws_stack.bucket, key)

    def timed_out(self, *args, **kwargs):
        raise RuntimeError("Task timed out after 30.00 seconds")

    with monkeypatch.context() as patch:  # the attempt dies mid-way and never releases its claim
        patch.setattr(DynamoDbRegistry, "register_version", timed_out)
        patch.setattr(idempotency.DynamoDbIdempotencyStore, "release", lambda self, key: None)
        with pytest.raises(RuntimeError):
            upload(event, LambdaContext(remaining_ms=30_000))
    store = get_bus().services.idempotency
    [claim] = [
        i for i in aws_stack.client("dynamodb").scan(TableName=store.table)["Items"] if "upload:" in i["id"]["S"]
    ]
    import time

    assert float(claim["locked_until"]["N"]) - time.time() <= 30

    class Later:  # Lambda retries the event a minute later
        @staticmethod
        def time():
            return time.time() + 61

    monkeypatch.setattr(idempotency, "time", Later)
    [retried] = upload(event, LambdaContext(remaining_ms=30_000))["results"]
    assert retried["status"] == "registered" and registry().get_alias("churn", "dev").version == 1


def test_an_upload_whose_every_record_failed_replies_failed_and_counts_only_failures(aws_stack, make_package, capsys):
    put_policy(aws_stack)
    bad = make_package("churn")
    (bad / "model.bin").write_bytes(b"tampered")
    keys = [upload_package(aws_stack, bad, "models/churn/bad"), "models/ghost/v1/modelpilot.json"]
    event = {"Records": [s3_notification(aws_stack.bucket, k)["Records"][0] for k in keys]}
    reply = upload(event, LambdaContext())
    assert reply["status"] == "failed" and [r["status"] for r in reply["results"]] == ["failed", "failed"]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{") and "_aws" in line]
    assert [e.get("Failed") for e in emf] == [[2.0]] or [e.get("Failed") for e in emf] == [[1.0, 1.0]]
    assert not any("Succeeded" in e for e in emf)
