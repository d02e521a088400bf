"""S3 as the artifact store. URIs are ``s3://bucket/key``; prefixes end at a ``/``.

Reads stream in chunks (the sha256 of a multi-GB artifact never sits in memory);
every write asks for server-side encryption; ``write_once`` writes use a
conditional put (``If-None-Match: *``), so two writers never silently replace
each other's object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from modelpilot.adapters.aws._errors import error_code, translate
from modelpilot.exceptions import AlreadyExists, ArtifactMissing, DataError
from modelpilot.ports import ArtifactStore, ObjectInfo

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["S3ArtifactStore", "split_uri"]

_MISSING = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchBucket"})
#: how botocore reports S3's 304 answer to a conditional GetObject
_NOT_MODIFIED = frozenset({"304", "NotModified"})


def split_uri(uri: str) -> tuple[str, str]:
    """Return ``(bucket, key)`` of an ``s3://bucket/key`` URI; raise ``DataError`` otherwise."""
    if not uri.startswith("s3://"):
        raise DataError(f"{uri} is not an s3:// URI; the AWS backend reads s3://bucket/key", uri=uri)
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise DataError(f"{uri} names no bucket", uri=uri)
    return bucket, key


class S3ArtifactStore(ArtifactStore):
    """An :class:`ArtifactStore` on S3.

    Parameters
    ----------
    client:
        A boto3 S3 client (injected).
    sse:
        Server-side encryption asked for on every write: ``"AES256"`` or ``"aws:kms"``; None relies on the
        bucket's default encryption (the stack's bucket defaults to SSE-KMS with its own key).
    kms_key_id:
        The KMS key for ``"aws:kms"`` (default: the bucket's or the AWS-managed key).
    """

    def __init__(self, client: Any, *, sse: str | None = "AES256", kms_key_id: str | None = None) -> None:
        self.client = client
        self.sse = sse
        self.kms_key_id = kms_key_id

    def _fail(self, exc: Exception, uri: str, what: str) -> Exception:
        if isinstance(exc, ClientError) and error_code(exc) in _MISSING:
            return ArtifactMissing(f"{uri} does not exist", uri=uri)
        return translate(exc, f"S3 {what} {uri}")

    def join(self, base: str, *parts: str) -> str:
        joined = base.rstrip("/")
        for part in parts:
            joined += "/" + part.strip("/")
        return joined

    def read_bytes(self, uri: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        data, _ = self._get(uri, None, max_bytes)
        return data or b""  # without an etag S3 never answers 304: data is never None here

    def read_if_changed(
        self, uri: str, etag: str | None, *, max_bytes: int = 16 * 1024 * 1024
    ) -> tuple[bytes | None, str]:
        """A conditional GetObject (``If-None-Match``): ``(None, etag)`` when S3 answers 304 Not Modified."""
        data, tag = self._get(uri, etag, max_bytes)
        return data, tag or ""

    def _get(self, uri: str, etag: str | None, max_bytes: int) -> tuple[bytes | None, str | None]:
        bucket, key = split_uri(uri)
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            kwargs["IfNoneMatch"] = f'"{etag}"'
        try:
            response = self.client.get_object(**kwargs)
        except ClientError as exc:
            if etag and error_code(exc) in _NOT_MODIFIED:
                return None, etag
            raise self._fail(exc, uri, "GetObject") from exc
        except BotoCoreError as exc:
            raise self._fail(exc, uri, "GetObject") from exc
        tag = str(response.get("ETag", "")).strip('"') or None
        body = response["Body"]
        try:
            if int(response.get("ContentLength", 0)) > max_bytes:
                raise DataError(
                    f"{uri} is {response['ContentLength']} bytes, more than the {max_bytes} allowed here",
                    uri=uri,
                )
            data: bytes = body.read()
        finally:
            body.close()
        return data, tag

    def open_chunks(self, uri: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        bucket, key = split_uri(uri)
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, uri, "GetObject") from exc
        try:
            yield from body.iter_chunks(chunk_size)
        except BotoCoreError as exc:
            raise translate(exc, f"S3 reading {uri}") from exc
        finally:
            body.close()

    def stat(self, uri: str) -> ObjectInfo:
        bucket, key = split_uri(uri)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, uri, "HeadObject") from exc
        return ObjectInfo(
            uri,
            int(head["ContentLength"]),
            str(head.get("ETag", "")).strip('"') or None,
            head.get("LastModified"),
        )

    def write_bytes(
        self,
        uri: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        write_once: bool = False,
    ) -> str:
        bucket, key = split_uri(uri)
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Body": data,
            "ContentType": content_type,
        }
        if self.sse:
            kwargs["ServerSideEncryption"] = self.sse
        if self.kms_key_id and self.sse == "aws:kms":
            kwargs["SSEKMSKeyId"] = self.kms_key_id
        if write_once:
            kwargs["IfNoneMatch"] = "*"
        try:
            self.client.put_object(**kwargs)
        except ClientError as exc:
            if write_once and error_code(exc) in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                if self.stat(uri).size == len(data) and self.read_bytes(uri, max_bytes=len(data) + 1) == data:
                    return uri
                raise AlreadyExists(f"{uri} already exists with other content", uri=uri) from None
            raise translate(exc, f"S3 PutObject {uri}") from exc
        except BotoCoreError as exc:
            raise translate(exc, f"S3 PutObject {uri}") from exc
        return uri

    def list(self, prefix: str) -> list[ObjectInfo]:
        bucket, key = split_uri(prefix)
        folder = key.rstrip("/") + "/" if key else ""
        found: list[ObjectInfo] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
                for obj in page.get("Contents", []):
                    found.append(
                        ObjectInfo(
                            f"s3://{bucket}/{obj['Key']}",
                            int(obj["Size"]),
                            str(obj.get("ETag", "")).strip('"') or None,
                            obj.get("LastModified"),
                        )
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._fail(exc, prefix, "ListObjectsV2") from exc
        if not found and key and not key.endswith("/"):
            try:
                return [self.stat(prefix)]
            except ArtifactMissing:
                return []
        return sorted(found, key=lambda o: o.uri)
