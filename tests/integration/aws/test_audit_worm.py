"""Checkpoints in an S3 bucket with Object Lock (moto): the anchor outlives whoever can write the registry.

Proves, on moto's S3: a checkpoint written by ``write_checkpoint`` into a bucket
with default COMPLIANCE retention is locked; deleting its version is refused;
an overwrite leaves the signed original readable as an older version; and
``verify_audit`` with that checkpoint names a DynamoDB chain recomputed after it.
Cannot prove: AWS's own enforcement (moto models it), or anything about a delete
*marker*, which hides the object from listings though its version stays: the
bucket policy in docs/audit.md denies ``s3:DeleteObject`` for that reason.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from botocore.exceptions import ClientError

from modelpilot.adapters.aws import _registry_items as items
from modelpilot.adapters.aws.artifacts import S3ArtifactStore
from modelpilot.domain.audit import GENESIS, compute_hash
from modelpilot.domain.checkpoint import CHECKPOINT_SECRET
from modelpilot.service.audit import latest_checkpoint, verify_audit, write_checkpoint
from modelpilot.testing import InMemorySecrets
from tests.support.aws import client, make_registry, moto_endpoint, unique
from tests.support.builders import T0, entry


def test_checkpoints_in_an_object_locked_bucket_cannot_be_removed_and_catch_a_recomputed_chain(request):
    s3 = client("s3", moto_endpoint(request))
    bucket = unique("audit-worm")
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    rule = {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}}
    s3.put_object_lock_configuration(
        Bucket=bucket, ObjectLockConfiguration={"ObjectLockEnabled": "Enabled", "Rule": rule}
    )
    store, root = S3ArtifactStore(s3, sse="aws:kms"), f"s3://{bucket}/audit"
    secrets = InMemorySecrets({CHECKPOINT_SECRET: "0123456789abcdef" * 4})
    registry = make_registry(request)
    for _ in range(3):
        registry.append_audit(entry("churn", "alarm"))

    uri, _ = write_checkpoint(registry, store, root, secrets, T0)
    key = uri.removeprefix(f"s3://{bucket}/")
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
    original = store.read_bytes(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=b'{"format": "forged"}', ContentMD5=_md5(b'{"format": "forged"}'))
    kept = s3.get_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])["Body"].read()
    assert kept == original

    # the overwrite is named; restoring the locked version restores the anchor
    _, _, problem = latest_checkpoint(store, root, secrets)
    assert problem is not None and "cannot be read" in problem
    s3.put_object(Bucket=bucket, Key=key, Body=original, ContentMD5=_md5(original))

    # rewrite record 2 onwards and the head in DynamoDB: only the checkpoint can tell
    prev, forged = GENESIS, []
    for record in registry.audit_records("churn"):
        body = replace(record, reason="edited" if record.seq == 2 else record.reason, prev_hash=prev, hash="")
        forged.append(replace(body, hash=compute_hash(body.body())))
        prev = forged[-1].hash
    for record in forged[1:]:
        item = {**items.key("churn", items.audit_key(record.seq)), "doc": items.doc(record.to_dict())}
        registry.client.put_item(TableName=registry.table, Item=item)
    head_item = {**items.head_key("churn"), "seq": {"N": "3"}, "head": {"S": forged[-1].hash}}
    registry.client.put_item(TableName=registry.table, Item=head_item)
    assert verify_audit(registry).ok
    checkpoint, found, problem = latest_checkpoint(store, root, secrets)
    assert found == uri and problem is None
    report = verify_audit(registry, checkpoint=checkpoint, checkpoint_uri=found)
    assert not report.ok and "record 3 differs from the checkpoint" in report.verdicts[0].problem


def _md5(data: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
