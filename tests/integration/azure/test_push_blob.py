"""``modelpilot push`` to Blob Storage on Azurite: recorded digests, resume from staged blocks, nothing sent twice."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import parse_qs, urlparse

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.blob import BlobServiceClient

from modelpilot.adapters.azure.upload import BlobPackageUploader
from modelpilot.exceptions import AlreadyExists, TransientError
from modelpilot.package.builder import write_package
from modelpilot.package.push import push_package
from tests.support import azure as az

pytestmark = pytest.mark.integration
MIB = 1024 * 1024


class Counter:
    """Counts the requests that carry content (Put Blob, Put Block, Put Block List); can drop the connection."""

    def __init__(self, fail_after_blocks: int | None = None) -> None:
        self.calls: list[str] = []
        self.fail_after_blocks = fail_after_blocks

    def __call__(self, request) -> None:
        http = request.http_request
        if http.method != "PUT":
            return
        comp = parse_qs(urlparse(http.url).query).get("comp", [""])[0]
        kind = {"": "PutBlob", "block": "PutBlock", "blocklist": "PutBlockList"}.get(comp, comp)
        if (
            kind == "PutBlock"
            and self.fail_after_blocks is not None
            and self.calls.count("PutBlock") >= self.fail_after_blocks
        ):
            raise ServiceRequestError("connection reset")
        self.calls.append(kind)


def _uploader(request, counter: Counter) -> BlobPackageUploader:
    service = BlobServiceClient.from_connection_string(
        az.azurite(request).connection_string, raw_request_hook=counter, retry_total=1
    )
    return BlobPackageUploader(service, single_put_limit=8 * MIB, block_size=8 * MIB)


def _package(tmp_path, big: int = 20 * MIB):
    data = os.urandom(big)
    root = tmp_path / "pkg"
    write_package(
        root,
        files={"weights.bin": data, "config.json": b'{"layers": 3}'},
        name="churn",
        framework="torch",
        metrics={"auc": 0.9},
    )
    return root, data


def test_interrupted_push_resumes_from_the_staged_blocks(request, tmp_path):
    container = az.new_container(request, "push")
    root, data = _package(tmp_path)
    destination = f"az://{container}/churn/r1/"
    first = Counter(fail_after_blocks=1)
    with pytest.raises(TransientError):
        push_package(_uploader(request, first), root, destination)
    assert first.calls == ["PutBlob", "PutBlock"]  # config.json, then one block of weights.bin
    names = [b.name for b in az.blob_service(request).get_container_client(container).list_blobs()]
    assert names == ["churn/r1/config.json"]  # the manifest never went up

    second = Counter()
    report = push_package(_uploader(request, second), root, destination)
    assert second.calls == ["PutBlock", "PutBlock", "PutBlockList", "PutBlob"]  # two blocks left, commit, manifest
    assert [(f.status, f.parts_sent, f.parts_reused) for f in report.files] == [
        ("skipped", 0, 0),
        ("resumed", 2, 1),
        ("uploaded", 1, 0),
    ]
    blob = az.blob_service(request).get_blob_client(container, "churn/r1/weights.bin")
    assert blob.download_blob().readall() == data
    assert blob.get_blob_properties().metadata["modelpilot_sha256"] == hashlib.sha256(data).hexdigest()

    third = Counter()
    again = push_package(_uploader(request, third), root, destination)
    assert third.calls == [] and {f.status for f in again.files} == {"skipped"}


def test_a_blob_with_other_content_is_replaced_and_another_manifest_is_refused(request, tmp_path):
    container = az.new_container(request, "push")
    root, _ = _package(tmp_path, big=1024)
    service = az.blob_service(request)
    service.get_blob_client(container, "churn/r2/config.json").upload_blob(b'{"layers": 9}')
    report = push_package(_uploader(request, Counter()), root, f"az://{container}/churn/r2")
    assert report.files[0].status == "uploaded"
    assert service.get_blob_client(container, "churn/r2/config.json").download_blob().readall() == b'{"layers": 3}'

    service.get_blob_client(container, "churn/r3/modelpilot.json").upload_blob(
        b"{}", metadata={"modelpilot_sha256": "0" * 64}
    )
    counter = Counter()
    with pytest.raises(AlreadyExists):
        push_package(_uploader(request, counter), root, f"az://{container}/churn/r3")
    assert counter.calls == []
