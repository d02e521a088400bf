"""The PackageUploader contract: the folder, S3 and Blob uploaders behave the same."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelpilot.adapters.local.upload import FolderPackageUploader
from modelpilot.exceptions import AlreadyExists, DigestMismatch

MIB = 1024 * 1024


@pytest.fixture(params=["folder", "s3", "azure_blob"])
def uploader(request, tmp_path):
    """Yield ``(uploader, base URI, read(uri) -> bytes)``; large files go up in parts."""
    if request.param == "folder":
        return FolderPackageUploader(), str(tmp_path / "store"), lambda uri: Path(uri).read_bytes()
    if request.param == "s3":
        from modelpilot.adapters.aws.upload import S3PackageUploader
        from tests.support.aws import client, create_bucket, moto_endpoint, unique

        s3 = client("s3", moto_endpoint(request))
        bucket = create_bucket(s3, unique("uploads"))

        def read_s3(uri):
            return s3.get_object(Bucket=bucket, Key=uri.split("/", 3)[3])["Body"].read()

        return S3PackageUploader(s3, multipart_threshold=6 * MIB, part_size=5 * MIB), f"s3://{bucket}/base", read_s3
    from modelpilot.adapters.azure.upload import BlobPackageUploader
    from tests.support import azure as az

    container = az.new_container(request, "uploads")
    service = az.blob_service(request)

    def read_blob(uri):
        return service.get_blob_client(container, uri.split("/", 3)[3]).download_blob().readall()

    return (
        BlobPackageUploader(service, single_put_limit=6 * MIB, block_size=1 * MIB),
        f"az://{container}/base",
        read_blob,
    )


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


@pytest.mark.parametrize("size", [0, 1000, 7 * MIB], ids=["empty", "small", "in-parts"])
def test_upload_records_the_digest_and_a_second_upload_is_skipped(uploader, tmp_path, size):
    up, base, read = uploader
    data = os.urandom(size)
    path, sha256, length = _file(tmp_path, "f.bin", data)
    uri = up.join(base, "pkg", "f.bin")
    assert up.recorded_sha256(uri) is None
    first = up.upload(path, uri, sha256=sha256, size=length)
    assert first.status == "uploaded" and first.uri == uri
    assert read(uri) == data
    assert up.recorded_sha256(uri) == sha256
    again = up.upload(path, uri, sha256=sha256, size=length)
    assert (again.status, again.parts_sent) == ("skipped", 0)


def test_other_content_is_replaced_or_refused(uploader, tmp_path):
    up, base, read = uploader
    uri = up.join(base, "f.json")
    old, old_sha, old_size = _file(tmp_path, "old.json", b'{"v": 1}')
    new, new_sha, new_size = _file(tmp_path, "new.json", b'{"v": 2}')
    up.upload(old, uri, sha256=old_sha, size=old_size, content_type="application/json", replace=False)
    with pytest.raises(AlreadyExists):
        up.upload(new, uri, sha256=new_sha, size=new_size, replace=False)
    assert read(uri) == b'{"v": 1}'
    assert up.upload(old, uri, sha256=old_sha, size=old_size, replace=False).status == "skipped"
    assert up.upload(new, uri, sha256=new_sha, size=new_size).status == "uploaded"
    assert read(uri) == b'{"v": 2}'


@pytest.mark.parametrize("size", [1000, 7 * MIB], ids=["small", "in-parts"])
def test_a_file_that_no_longer_has_its_digest_is_not_published(uploader, tmp_path, size):
    up, base, _read = uploader
    path, sha256, length = _file(tmp_path, "f.bin", os.urandom(size))
    path.write_bytes(os.urandom(size))  # changed after it was hashed
    uri = up.join(base, "f.bin")
    with pytest.raises(DigestMismatch):
        up.upload(path, uri, sha256=sha256, size=length)
    assert up.recorded_sha256(uri) is None
