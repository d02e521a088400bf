"""``modelpilot push`` to S3 on moto's server: checksums, resume after an interruption, nothing sent twice."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import pytest
from botocore.exceptions import EndpointConnectionError

from modelpilot.adapters.aws.upload import S3PackageUploader
from modelpilot.exceptions import AlreadyExists, TransientError
from modelpilot.package.builder import write_package
from modelpilot.package.push import push_package
from tests.support.aws import client, create_bucket, moto_endpoint, unique

pytestmark = pytest.mark.integration
MIB = 1024 * 1024


class Counter:
    """Counts the S3 requests that carry file content, and cuts the connection after ``fail_after`` parts."""

    def __init__(self, s3, fail_after: int | None = None) -> None:
        self.calls: list[str] = []
        self.fail_after = fail_after
        s3.meta.events.register("before-send.s3.*", self._sent)

    def _sent(self, request, **kwargs):
        operation = kwargs["event_name"].split(".")[-1]
        if operation in {"PutObject", "UploadPart"}:
            parts = self.calls.count("UploadPart")
            if operation == "UploadPart" and self.fail_after is not None and parts >= self.fail_after:
                raise EndpointConnectionError(endpoint_url=request.url)
            self.calls.append(operation)
        return None

    def count(self, operation: str) -> int:
        return self.calls.count(operation)


@pytest.fixture
def s3_target(request):
    s3 = client("s3", moto_endpoint(request))
    bucket = create_bucket(s3, unique("push"))
    return s3, bucket


def _fresh_client(request):
    import boto3

    return boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).client("s3", endpoint_url=moto_endpoint(request))


def _package(tmp_path, big: int = 20 * MIB):
    data = os.urandom(big)
    root = tmp_path / "pkg"
    write_package(
        root,
        files={"weights.bin": data, "config.json": b'{"layers": 3}', "vocab.txt": b"a\nb\nc\n"},
        name="churn",
        framework="torch",
        metrics={"auc": 0.9},
    )
    return root, data


def test_push_records_the_digest_and_s3_verifies_every_object(request, s3_target, tmp_path):
    s3, bucket = s3_target
    root, data = _package(tmp_path)
    uploader = S3PackageUploader(_fresh_client(request), multipart_threshold=8 * MIB, part_size=8 * MIB)
    report = push_package(uploader, root, f"s3://{bucket}/models/churn/r1/")
    assert [f.uri.rsplit("/", 1)[1] for f in report.files] == [
        "config.json",
        "vocab.txt",
        "weights.bin",
        "modelpilot.json",
    ]
    assert [f.status for f in report.files] == ["uploaded"] * 4
    assert report.files[2].parts_sent == 3  # 8 + 8 + 4 MiB
    head = s3.head_object(Bucket=bucket, Key="models/churn/r1/weights.bin", ChecksumMode="ENABLED")
    assert head["Metadata"]["modelpilot-sha256"] == hashlib.sha256(data).hexdigest()
    parts = [hashlib.sha256(data[i : i + 8 * MIB]).digest() for i in range(0, len(data), 8 * MIB)]
    composite = base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    # S3 answers "<composite>-3"; moto leaves the part count off
    assert head["ChecksumSHA256"].partition("-")[0] == composite
    small = s3.head_object(Bucket=bucket, Key="models/churn/r1/config.json", ChecksumMode="ENABLED")
    assert small["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b'{"layers": 3}').digest()).decode()
    manifest = json.loads(s3.get_object(Bucket=bucket, Key="models/churn/r1/modelpilot.json")["Body"].read())
    assert manifest["name"] == "churn"


def test_interrupted_push_resumes_and_sends_only_what_is_missing(request, s3_target, tmp_path):
    s3, bucket = s3_target
    root, _ = _package(tmp_path)
    destination = f"s3://{bucket}/models/churn/r2/"
    first_client = _fresh_client(request)
    first = Counter(first_client, fail_after=1)  # the connection drops after the first part of weights.bin
    with pytest.raises(TransientError):
        push_package(S3PackageUploader(first_client, multipart_threshold=8 * MIB, part_size=8 * MIB), root, destination)
    assert first.calls == ["PutObject", "PutObject", "UploadPart"]  # config.json, vocab.txt, one part
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="models/churn/r2/")
    assert sorted(o["Key"].rsplit("/", 1)[1] for o in listed["Contents"]) == ["config.json", "vocab.txt"]  # no manifest

    second_client = _fresh_client(request)
    second = Counter(second_client)
    report = push_package(
        S3PackageUploader(second_client, multipart_threshold=8 * MIB, part_size=8 * MIB), root, destination
    )
    assert second.count("UploadPart") == 2 and second.count("PutObject") == 1  # two parts left, then the manifest
    assert [(f.status, f.parts_sent, f.parts_reused) for f in report.files] == [
        ("skipped", 0, 0),
        ("skipped", 0, 0),
        ("resumed", 2, 1),
        ("uploaded", 1, 0),
    ]
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    third_client = _fresh_client(request)
    third = Counter(third_client)
    again = push_package(
        S3PackageUploader(third_client, multipart_threshold=8 * MIB, part_size=8 * MIB), root, destination
    )
    assert third.calls == [] and {f.status for f in again.files} == {"skipped"}


def test_metadata_alone_never_makes_push_skip_a_file(request, s3_target, tmp_path):
    s3, bucket = s3_target
    root, _ = _package(tmp_path, big=1024)
    digest = hashlib.sha256((root / "config.json").read_bytes()).hexdigest()
    # same size, the right digest written into the metadata, other bytes: S3's own checksum tells them apart
    s3.put_object(
        Bucket=bucket, Key="models/churn/r3/config.json", Body=b'{"layers": 4}', Metadata={"modelpilot-sha256": digest}
    )
    counter_client = _fresh_client(request)
    counter = Counter(counter_client)
    report = push_package(S3PackageUploader(counter_client), root, f"s3://{bucket}/models/churn/r3")
    assert report.files[0].status == "uploaded" and counter.count("PutObject") == 4
    body = s3.get_object(Bucket=bucket, Key="models/churn/r3/config.json")["Body"].read()
    assert body == b'{"layers": 3}'


def test_an_in_progress_upload_of_other_content_is_aborted_not_reused(request, s3_target, tmp_path):
    s3, bucket = s3_target
    root, data = _package(tmp_path)
    key = "models/churn/r4/weights.bin"
    stale = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=stale, PartNumber=1, Body=os.urandom(8 * MIB))
    push_package(
        S3PackageUploader(_fresh_client(request), multipart_threshold=8 * MIB), root, f"s3://{bucket}/models/churn/r4"
    )
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_destination_holding_another_package_is_refused_before_anything_is_written(request, s3_target, tmp_path):
    s3, bucket = s3_target
    root, _ = _package(tmp_path, big=1024)
    s3.put_object(
        Bucket=bucket, Key="models/churn/r5/modelpilot.json", Body=b"{}", Metadata={"modelpilot-sha256": "0" * 64}
    )
    counter_client = _fresh_client(request)
    counter = Counter(counter_client)
    with pytest.raises(AlreadyExists, match="another package"):
        push_package(S3PackageUploader(counter_client), root, f"s3://{bucket}/models/churn/r5/")
    assert counter.calls == []
    assert s3.list_objects_v2(Bucket=bucket, Prefix="models/churn/r5/")["KeyCount"] == 1
