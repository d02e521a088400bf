"""A folder as the artifact store. URIs are file paths or ``file://`` URIs."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from modelpilot.exceptions import AlreadyExists, ArtifactMissing, DataError
from modelpilot.ports import ArtifactStore, ObjectInfo

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["FolderArtifactStore", "to_path"]


def to_path(uri: str) -> Path:
    """Return the filesystem path of a plain path or ``file://`` URI."""
    if uri.startswith("file://"):
        return Path(unquote(urlparse(uri).path))
    if "://" in uri:
        raise DataError(f"{uri} is not a local path; the local backend reads files and folders only", uri=uri)
    return Path(uri)


class FolderArtifactStore(ArtifactStore):
    """Objects are files; prefixes are folders. Writes are atomic (temp file + rename)."""

    def join(self, base: str, *parts: str) -> str:
        return str(to_path(base).joinpath(*parts))

    def read_bytes(self, uri: str, *, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        path = to_path(uri)
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise DataError(f"{uri} is {size} bytes, more than the {max_bytes} allowed here", uri=uri)
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ArtifactMissing(f"{uri} does not exist", uri=uri) from None

    def open_chunks(self, uri: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        path = to_path(uri)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ArtifactMissing(f"{uri} does not exist", uri=uri) from None
        with handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def local_file(self, uri: str) -> str | None:
        path = to_path(uri)
        return str(path) if path.is_file() else None

    def stat(self, uri: str) -> ObjectInfo:
        path = to_path(uri)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise ArtifactMissing(f"{uri} does not exist", uri=uri) from None
        if not path.is_file():
            raise ArtifactMissing(f"{uri} is not a file", uri=uri)
        return ObjectInfo(str(path), st.st_size, None, datetime.fromtimestamp(st.st_mtime, UTC))

    def write_bytes(
        self, uri: str, data: bytes, *, content_type: str = "application/octet-stream", write_once: bool = False
    ) -> str:
        path = to_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        if write_once and path.exists():
            if path.read_bytes() == data:
                return str(path)
            raise AlreadyExists(f"{uri} already exists with other content", uri=uri)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            if write_once:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    if path.read_bytes() != data:
                        raise AlreadyExists(f"{uri} already exists with other content", uri=uri) from None
                os.unlink(tmp)
            else:
                os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return str(path)

    def list(self, prefix: str) -> list[ObjectInfo]:
        root = to_path(prefix)
        if root.is_file():
            return [self.stat(str(root))]
        if not root.is_dir():
            return []
        found = []
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                full = Path(dirpath, name)
                st = full.stat()
                found.append(ObjectInfo(str(full), st.st_size, None, datetime.fromtimestamp(st.st_mtime, UTC)))
        return sorted(found, key=lambda o: o.uri)
