"""How ``modelpilot push`` splits a large file into parts, and the digests of each part.

Both clouds upload large files in parts (S3 multipart upload, Blob block list). The
split is a pure function of the file size, so a re-run after an interruption splits
the file the same way and can tell, part by part, what the store already holds.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["MIB", "Part", "b64", "composite_sha256", "part_size_for", "plan_parts", "read_part"]

MIB = 1024 * 1024
#: S3 allows at most 10,000 parts; Blob Storage 50,000 blocks
MAX_PARTS = 10_000


def part_size_for(size: int, minimum: int = 8 * MIB) -> int:
    """Return the part size for ``size`` bytes: ``minimum``, or more (whole MiB) to stay within 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    if needed <= minimum:
        return minimum
    return -(-needed // MIB) * MIB


@dataclass(frozen=True)
class Part:
    """One part of a file: its 1-based number, where it starts, its length and digests."""

    number: int
    offset: int
    length: int
    sha256: bytes
    md5_hex: str

    @property
    def sha256_b64(self) -> str:
        """The part's sha256 as S3 checksums carry it (base64)."""
        return b64(self.sha256)


def b64(data: bytes) -> str:
    """Return ``data`` base64-encoded as text."""
    return base64.b64encode(data).decode("ascii")


def read_part(path: Path, offset: int, length: int) -> bytes:
    """Return ``length`` bytes of ``path`` from ``offset``."""
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(length)


def plan_parts(path: Path, size: int, part_size: int) -> tuple[list[Part], str]:
    """Split ``path`` into parts of ``part_size`` and hash each; return the parts and the file's hex sha256."""
    whole = hashlib.sha256()
    parts: list[Part] = []
    offset = 0
    with path.open("rb") as handle:
        while offset < size or not parts:
            chunk = handle.read(min(part_size, size - offset))
            whole.update(chunk)
            parts.append(
                Part(
                    len(parts) + 1,
                    offset,
                    len(chunk),
                    hashlib.sha256(chunk).digest(),
                    hashlib.md5(chunk, usedforsecurity=False).hexdigest(),
                )
            )
            offset += len(chunk)
            if not chunk:
                break
    return parts, whole.hexdigest()


def composite_sha256(parts: list[Part]) -> str:
    """Return S3's composite checksum of a multipart object: base64 sha256 of the parts' sha256s, ``-N``."""
    return f"{b64(hashlib.sha256(b''.join(p.sha256 for p in parts)).digest())}-{len(parts)}"
