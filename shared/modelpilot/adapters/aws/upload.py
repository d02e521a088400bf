"""``modelpilot push`` to S3: single PUTs for small files, multipart uploads for large ones.

What is recorded and verified on each object:

* ``x-amz-meta-modelpilot-sha256``: the file's sha256 (hex), as the manifest lists it;
* S3's own SHA-256 checksum, computed by S3 from the bytes it received and checked
  against the checksum sent with each request (the whole object for a PUT, each part
  for a multipart upload, whose object checksum is then the composite ``<b64>-<N>``).

An object is skipped when its size, its recorded sha256 and the checksum S3 computed
all match the local file, so a stale or hand-written metadata value alone never makes
``push`` skip a file. A multipart upload interrupted earlier is resumed: parts S3
already holds are kept when their checksum (or, where S3 lists none, their MD5 ETag)
matches the local part; any other part is sent again, and an in-progress upload whose
parts hold other content is aborted.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot.adapters.aws._errors import error_code, translate
from modelpilot.adapters.aws.artifacts import split_uri
from modelpilot.exceptions import AlreadyExists, DigestMismatch
from modelpilot.package.parts import MIB, b64, composite_sha256, part_size_for, plan_parts, read_part
from modelpilot.ports import PackageUploader, UploadResult

if TYPE_CHECKING:
    from pathlib import Path

    from modelpilot.package.parts import Part

__all__ = ["SHA256_METADATA", "S3PackageUploader"]

#: the user-metadata key holding the file's hex sha256 (``x-amz-meta-modelpilot-sha256``)
SHA256_METADATA = "modelpilot-sha256"
#: the user-metadata key holding the part size of a multipart upload
PART_SIZE_METADATA = "modelpilot-part-size"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_PRECONDITION = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


class S3PackageUploader(PackageUploader):
    """A :class:`PackageUploader` on S3.

    Parameters
    ----------
    client:
        A boto3 S3 client (built by the AWS wiring).
    sse:
        Server-side encryption asked for on every write; None relies on the bucket's default encryption.
    multipart_threshold, part_size:
        Files of at least ``multipart_threshold`` bytes go up in parts of at least ``part_size`` bytes.
    """

    def __init__(
        self,
        client: Any,
        *,
        sse: str | None = None,
        kms_key_id: str | None = None,
        multipart_threshold: int = 16 * MIB,
        part_size: int = 8 * MIB,
    ) -> None:
        self.client = client
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size

    def join(self, base: str, *parts: str) -> str:
        joined = base.rstrip("/")
        for part in parts:
            joined += "/" + part.strip("/")
        return joined

    def _encryption(self) -> dict[str, str]:
        kwargs: dict[str, str] = {}
        if self.sse:
            kwargs["ServerSideEncryption"] = self.sse
        if self.kms_key_id and self.sse == "aws:kms":
            kwargs["SSEKMSKeyId"] = self.kms_key_id
        return kwargs

    def _head(self, uri: str) -> dict[str, Any] | None:
        bucket, key = split_uri(uri)
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise translate(exc, f"S3 HeadObject {uri}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"S3 HeadObject {uri}") from exc
        return head

    def recorded_sha256(self, uri: str) -> str | None:
        head = self._head(uri)
        if head is None:
            return None
        return str(head.get("Metadata", {}).get(SHA256_METADATA, "")) or None

    def _holds(self, head: dict[str, Any], path: Path, sha256: str, size: int) -> bool:
        """True when the object of ``head`` holds the file: size, recorded sha256 and S3's checksum agree."""
        if int(head.get("ContentLength", -1)) != size or head.get("Metadata", {}).get(SHA256_METADATA) != sha256:
            return False
        checksum = str(head.get("ChecksumSHA256") or "")
        if not checksum:
            return False
        part_size = str(head.get("Metadata", {}).get(PART_SIZE_METADATA, ""))
        if not part_size:  # one PUT: S3's checksum is the sha256 of the whole object
            return checksum == b64(bytes.fromhex(sha256))
        if not part_size.isdigit() or int(part_size) <= 0:
            return False
        # a multipart upload: S3's checksum is the composite "<sha256 of the parts' sha256s>-<parts>"
        parts, local = plan_parts(path, size, int(part_size))
        value, _, count = checksum.partition("-")
        expected, _, expected_count = composite_sha256(parts).partition("-")
        return local == sha256 and value == expected and count in {"", expected_count}

    def upload(
        self,
        path: Path,
        uri: str,
        *,
        sha256: str,
        size: int,
        content_type: str = "application/octet-stream",
        replace: bool = True,
    ) -> UploadResult:
        head = self._head(uri)
        if head is not None:
            if self._holds(head, path, sha256, size):
                return UploadResult(uri, "skipped", size)
            if not replace:
                raise AlreadyExists(f"{uri} already exists with other content; push to a new prefix", uri=uri)
        if size < self.multipart_threshold:
            return self._put(path, uri, sha256, size, content_type, replace)
        return self._multipart(path, uri, sha256, size, content_type)

    # -- one PUT ---------------------------------------------------------------------------
    def _put(self, path: Path, uri: str, sha256: str, size: int, content_type: str, replace: bool) -> UploadResult:
        bucket, key = split_uri(uri)
        data = path.read_bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            raise DigestMismatch(f"{path}: the content no longer has sha256 {sha256}", file=str(path))
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
            "ChecksumAlgorithm": "SHA256",
            # S3 recomputes the checksum of the bytes it receives and refuses the PUT when they differ
            "ChecksumSHA256": b64(bytes.fromhex(sha256)),
            "Metadata": {SHA256_METADATA: sha256},
            **self._encryption(),
        }
        if not replace:
            kwargs["IfNoneMatch"] = "*"
        try:
            self.client.put_object(**kwargs)
        except ClientError as exc:
            if error_code(exc) in _PRECONDITION:
                raise AlreadyExists(f"{uri} was written by someone else meanwhile", uri=uri) from None
            if error_code(exc) in {"BadDigest", "XAmzContentSHA256Mismatch"} or len(data) != size:
                raise DigestMismatch(f"{path}: the content no longer has sha256 {sha256}", file=str(path)) from None
            raise translate(exc, f"S3 PutObject {uri}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"S3 PutObject {uri}") from exc
        return UploadResult(uri, "uploaded", size, parts_sent=1)

    # -- multipart ---------------------------------------------------------------------------
    def _in_progress(self, bucket: str, key: str) -> list[str]:
        """Return the ids of the multipart uploads in progress for exactly ``key``, newest first."""
        found: list[tuple[str, str]] = []
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=bucket, Prefix=key):
            for upload in page.get("Uploads", []):
                if upload["Key"] == key:
                    found.append((str(upload.get("Initiated", "")), str(upload["UploadId"])))
        return [upload_id for _, upload_id in sorted(found, reverse=True)]

    def _listed_parts(self, bucket: str, key: str, upload_id: str) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=bucket, Key=key, UploadId=upload_id):
            parts.extend(page.get("Parts", []))
        return parts

    @staticmethod
    def _same(listed: dict[str, Any], part: Part) -> bool:
        if int(listed.get("Size", -1)) != part.length:
            return False
        if listed.get("ChecksumSHA256"):
            return bool(listed["ChecksumSHA256"] == part.sha256_b64)
        return str(listed.get("ETag", "")).strip('"') == part.md5_hex

    def _resumable(self, bucket: str, key: str, parts: list[Part]) -> tuple[str | None, dict[int, str]]:
        """Return an in-progress upload of this content and the ETags of the parts it holds, or ``(None, {})``.

        Uploads whose parts hold other content are aborted (they could never be completed into this file).
        """
        by_number = {p.number: p for p in parts}
        for upload_id in self._in_progress(bucket, key):
            listed = self._listed_parts(bucket, key, upload_id)
            if all(
                int(item["PartNumber"]) in by_number and self._same(item, by_number[int(item["PartNumber"])])
                for item in listed
            ):
                return upload_id, {int(item["PartNumber"]): str(item["ETag"]) for item in listed}
            self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        return None, {}

    def _multipart(self, path: Path, uri: str, sha256: str, size: int, content_type: str) -> UploadResult:
        bucket, key = split_uri(uri)
        part_size = part_size_for(size, self.part_size)
        parts, local = plan_parts(path, size, part_size)
        if local != sha256:
            raise DigestMismatch(f"{path}: the content no longer has sha256 {sha256}", file=str(path))
        try:
            upload_id, etags = self._resumable(bucket, key, parts)
            resumed = upload_id is not None
            if upload_id is None:
                created = self.client.create_multipart_upload(
                    Bucket=bucket,
                    Key=key,
                    ContentType=content_type,
                    ChecksumAlgorithm="SHA256",
                    Metadata={SHA256_METADATA: sha256, PART_SIZE_METADATA: str(part_size)},
                    **self._encryption(),
                )
                upload_id = str(created["UploadId"])
            sent = 0
            for part in parts:
                if part.number in etags:
                    continue
                data = read_part(path, part.offset, part.length)
                answer = self.client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=part.number,
                    Body=data,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=part.sha256_b64,
                )
                etags[part.number] = str(answer["ETag"])
                sent += 1
            self.client.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [
                        {"PartNumber": p.number, "ETag": etags[p.number], "ChecksumSHA256": p.sha256_b64} for p in parts
                    ]
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"S3 multipart upload of {uri}") from exc
        head = self._head(uri)
        if head is None or not self._holds(head, path, sha256, size):
            # a resumed upload created for another file with the same leading parts carries that file's
            # metadata: the object is replaced by a fresh upload of this one
            if resumed:
                return self._fresh(path, uri, sha256, size, content_type)
            raise DigestMismatch(f"{uri}: S3 holds other content than {path} after the upload", uri=uri)
        return UploadResult(uri, "resumed" if resumed else "uploaded", size, sent, len(parts) - sent)

    def _fresh(self, path: Path, uri: str, sha256: str, size: int, content_type: str) -> UploadResult:
        bucket, key = split_uri(uri)
        try:
            for upload_id in self._in_progress(bucket, key):
                self.client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"S3 AbortMultipartUpload {uri}") from exc
        return self._multipart(path, uri, sha256, size, content_type)
