"""Azure Blob Storage as the artifact store. URIs look like ``az://container/path/to/blob``.

Reads are streamed (sha256 never holds an object in memory); write-once uploads
use ``overwrite=False`` (``If-None-Match: *``) so a second writer cannot replace
an object with other content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContentSettings

from modelpilot.adapters.azure._errors import azure_errors
from modelpilot.exceptions import AlreadyExists, ArtifactMissing, DataError
from modelpilot.ports import ArtifactStore, ObjectInfo

if TYPE_CHECKING:
    from collections.abc import Iterator

    from azure.storage.blob import BlobClient, BlobServiceClient

__all__ = ["SCHEME", "BlobArtifactStore", "split_uri"]

SCHEME = "az://"


def split_uri(uri: str) -> tuple[str, str]:
    """Return ``(container, blob path)`` of an ``az://container/path`` URI."""
    if not uri.startswith(SCHEME):
        raise DataError(f"{uri} is not a blob URI; use az://<container>/<path>", uri=uri)
    container, _, path = uri[len(SCHEME) :].partition("/")
    if not container:
        raise DataError(f"{uri} names no container; use az://<container>/<path>", uri=uri)
    return container, path.strip("/")


class BlobArtifactStore(ArtifactStore):
    """An :class:`ArtifactStore` over one storage account.

    Parameters
    ----------
    service:
        A ``BlobServiceClient`` built with a credential (``DefaultAzureCredential``)
        or, for Azurite, from a connection string.
    """

    def __init__(self, service: BlobServiceClient) -> None:
        self.service = service

    def _blob(self, uri: str) -> BlobClient:
        container, path = split_uri(uri)
        if not path:
            raise DataError(f"{uri} names a container, not a blob", uri=uri)
        return self.service.get_blob_client(container, path)

    def join(self, base: str, *parts: str) -> str:
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def read_bytes(self, uri: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        blob = self._blob(uri)
        try:
            with azure_errors(f"read {uri}"):
                downloader = blob.download_blob()
                if downloader.size > max_bytes:
                    raise DataError(
                        f"{uri} is {downloader.size} bytes, more than the {max_bytes} allowed here", uri=uri
                    )
                return downloader.readall()
        except ResourceNotFoundError:
            raise ArtifactMissing(f"{uri} does not exist", uri=uri) from None

    def read_if_changed(
        self, uri: str, etag: str | None, *, max_bytes: int = 16 * 1024 * 1024
    ) -> tuple[bytes | None, str]:
        """A conditional download (``If-None-Match``): ``(None, etag)`` when the blob still has ``etag``."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotModifiedError

        blob = self._blob(uri)
        try:
            with azure_errors(f"read {uri}"):
                if etag:
                    downloader = blob.download_blob(etag=etag, match_condition=MatchConditions.IfModified)
                else:
                    downloader = blob.download_blob()
                if downloader.size > max_bytes:
                    raise DataError(
                        f"{uri} is {downloader.size} bytes, more than the {max_bytes} allowed here", uri=uri
                    )
                data = downloader.readall()
                tag = str(downloader.properties.etag or "")
        except (ResourceNotModifiedError, ResourceModifiedError):
            # If-None-Match held: Blob Storage answers 304, Azurite 412 ConditionNotMet; both mean "still that etag"
            if not etag:
                raise
            return None, etag
        except ResourceNotFoundError:
            raise ArtifactMissing(f"{uri} does not exist", uri=uri) from None
        return data, tag

    def open_chunks(self, uri: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        blob = self._blob(uri)
        try:
            with azure_errors(f"read {uri}"):
                size = blob.get_blob_properties().size
        except ResourceNotFoundError:
            raise ArtifactMissing(f"{uri} does not exist", uri=uri) from None
        offset = 0
        while offset < size:
            length = min(chunk_size, size - offset)
            try:
                with azure_errors(f"read {uri}"):
                    chunk = blob.download_blob(offset=offset, length=length).readall()
            except ResourceNotFoundError:
                raise ArtifactMissing(f"{uri} disappeared while it was read", uri=uri) from None
            if not chunk:
                break
            offset += len(chunk)
            yield chunk

    def stat(self, uri: str) -> ObjectInfo:
        blob = self._blob(uri)
        try:
            with azure_errors(f"stat {uri}"):
                props = blob.get_blob_properties()
        except ResourceNotFoundError:
            raise ArtifactMissing(f"{uri} does not exist", uri=uri) from None
        return ObjectInfo(uri, int(props.size), props.etag, props.last_modified)

    def write_bytes(
        self, uri: str, data: bytes, *, content_type: str = "application/octet-stream", write_once: bool = False
    ) -> str:
        blob = self._blob(uri)
        settings = ContentSettings(content_type=content_type)
        try:
            with azure_errors(f"write {uri}"):
                blob.upload_blob(data, overwrite=not write_once, content_settings=settings)
        except ResourceExistsError:
            if not self._holds(uri, data):
                raise AlreadyExists(f"{uri} already exists with other content", uri=uri) from None
        return uri

    def _holds(self, uri: str, data: bytes) -> bool:
        """Return True when the object at ``uri`` has exactly ``data`` (an idempotent re-write)."""
        if self.stat(uri).size != len(data):
            return False
        return self.read_bytes(uri, max_bytes=len(data)) == data

    def list(self, prefix: str) -> list[ObjectInfo]:
        container, path = split_uri(prefix)
        client = self.service.get_container_client(container)
        found: list[ObjectInfo] = []
        with azure_errors(f"list {prefix}"):
            start = f"{path}/" if path else None
            for item in client.list_blobs(name_starts_with=path or None):
                name = item.name
                if start is not None and name != path and not name.startswith(start):
                    continue
                found.append(ObjectInfo(f"{SCHEME}{container}/{name}", int(item.size), item.etag, item.last_modified))
        return sorted(found, key=lambda o: o.uri)
