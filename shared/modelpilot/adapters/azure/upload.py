"""``modelpilot push`` to Blob Storage: one Put Blob for small files, staged blocks for large ones.

What is recorded and verified on each blob:

* metadata ``modelpilot_sha256``: the file's sha256 (hex), as the manifest lists it,
  written in the same request that commits the content (Put Blob or Put Block List);
* every request that carries content sends its MD5 (``validate_content``), which the
  service checks before it stores a byte.

A blob is skipped when its size and recorded sha256 match the file. Large files go up
as blocks whose ids carry the block's number and sha256, so after an interruption the
uncommitted blocks the service already holds are recognised by id (and size) and only
the missing ones are staged; committing the block list then publishes the blob.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobBlock, ContentSettings

from modelpilot.adapters.azure._errors import azure_errors
from modelpilot.adapters.azure.blob import split_uri
from modelpilot.exceptions import AlreadyExists, DataError, DigestMismatch
from modelpilot.package.parts import MIB, part_size_for, plan_parts, read_part
from modelpilot.ports import PackageUploader, UploadResult

if TYPE_CHECKING:
    from pathlib import Path

    from azure.storage.blob import BlobClient, BlobServiceClient

    from modelpilot.package.parts import Part

__all__ = ["SHA256_METADATA", "BlobPackageUploader", "block_id"]

#: the blob metadata name holding the file's hex sha256 (metadata names are C# identifiers: no '-')
SHA256_METADATA = "modelpilot_sha256"


def block_id(part: Part) -> str:
    """Return the id of a block: its number and sha256, 62 characters for every block of a blob."""
    return f"{part.number:05d}-{part.sha256.hex()[:56]}"


class BlobPackageUploader(PackageUploader):
    """A :class:`PackageUploader` on one storage account.

    Parameters
    ----------
    service:
        The ``BlobServiceClient`` the Azure wiring builds (managed identity, or a connection string).
    single_put_limit, block_size:
        Files smaller than ``single_put_limit`` go up in one Put Blob; larger ones in blocks of ``block_size``.
    """

    def __init__(
        self, service: BlobServiceClient, *, single_put_limit: int = 16 * MIB, block_size: int = 8 * MIB
    ) -> None:
        self.service = service
        self.single_put_limit = single_put_limit
        self.block_size = block_size

    def _blob(self, uri: str) -> BlobClient:
        container, path = split_uri(uri)
        if not path:
            raise DataError(f"{uri} names a container, not a blob", uri=uri)
        return self.service.get_blob_client(container, path)

    def join(self, base: str, *parts: str) -> str:
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def _properties(self, blob: BlobClient, uri: str) -> tuple[int, str | None] | None:
        try:
            with azure_errors(f"stat {uri}"):
                props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        return int(props.size), (props.metadata or {}).get(SHA256_METADATA)

    def recorded_sha256(self, uri: str) -> str | None:
        found = self._properties(self._blob(uri), uri)
        return found[1] if found else None

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
        blob = self._blob(uri)
        found = self._properties(blob, uri)
        if found is not None:
            if found == (size, sha256):
                return UploadResult(uri, "skipped", size)
            if not replace:
                raise AlreadyExists(f"{uri} already exists with other content; push to a new prefix", uri=uri)
        settings = ContentSettings(content_type=content_type)
        metadata = {SHA256_METADATA: sha256}
        if size < self.single_put_limit:
            data = path.read_bytes()
            if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
                raise DigestMismatch(f"{path}: the content no longer has sha256 {sha256}", file=str(path))
            try:
                with azure_errors(f"write {uri}"):
                    blob.upload_blob(
                        data,
                        overwrite=replace,
                        metadata=metadata,
                        content_settings=settings,
                        validate_content=True,
                    )
            except (ResourceExistsError, ResourceModifiedError):
                raise AlreadyExists(f"{uri} was written by someone else meanwhile", uri=uri) from None
            return UploadResult(uri, "uploaded", size, parts_sent=1)
        return self._blocks(blob, path, uri, sha256, size, settings, metadata)

    def _blocks(
        self,
        blob: BlobClient,
        path: Path,
        uri: str,
        sha256: str,
        size: int,
        settings: ContentSettings,
        metadata: dict[str, str],
    ) -> UploadResult:
        parts, local = plan_parts(path, size, part_size_for(size, self.block_size))
        if local != sha256:
            raise DigestMismatch(f"{path}: the content no longer has sha256 {sha256}", file=str(path))
        with azure_errors(f"list blocks of {uri}"):
            try:
                _committed, uncommitted = blob.get_block_list(block_list_type="uncommitted")
            except ResourceNotFoundError:
                uncommitted = []
        staged = {(b.id, int(b.size)) for b in uncommitted}
        sent = 0
        for part in parts:
            if (block_id(part), part.length) in staged:
                continue
            with azure_errors(f"stage block {part.number} of {uri}"):
                blob.stage_block(block_id(part), read_part(path, part.offset, part.length), validate_content=True)
            sent += 1
        with azure_errors(f"commit {uri}"):
            blob.commit_block_list(
                [BlobBlock(block_id(p)) for p in parts], content_settings=settings, metadata=metadata
            )
        reused = len(parts) - sent
        return UploadResult(uri, "resumed" if reused else "uploaded", size, sent, reused)
