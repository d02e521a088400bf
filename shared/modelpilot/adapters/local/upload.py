"""``modelpilot push`` to a folder (the local backend): copy, verify, rename into place.

A file whose content already has the manifest's sha256 is not copied again; every
copy goes to a temporary file that is hashed while it is written and renamed into
place only when the digest matches, so an interrupted push never leaves a partial file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import TYPE_CHECKING

from modelpilot.adapters.local.artifacts import to_path
from modelpilot.exceptions import AlreadyExists, DigestMismatch
from modelpilot.package.builder import file_digest
from modelpilot.ports import PackageUploader, UploadResult

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["FolderPackageUploader"]


class FolderPackageUploader(PackageUploader):
    """A :class:`PackageUploader` into a folder."""

    def join(self, base: str, *parts: str) -> str:
        return str(to_path(base).joinpath(*parts))

    def recorded_sha256(self, uri: str) -> str | None:
        path = to_path(uri)
        return file_digest(path)[0] if path.is_file() else None

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
        target = to_path(uri)
        if target.is_file():
            if file_digest(target) == (sha256, size):
                return UploadResult(uri, "skipped", size)
            if not replace:
                raise AlreadyExists(f"{uri} already exists with other content; push to a new folder", uri=uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, path.open("rb") as source:
                while chunk := source.read(1024 * 1024):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise DigestMismatch(f"{path}: the content no longer has sha256 {sha256}", file=str(path))
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return UploadResult(uri, "uploaded", size, parts_sent=1)
