"""``modelpilot push``: upload a verified package folder, the manifest last.

The manifest is what the upload function reacts to, so it goes up only when every
artifact is in place; a destination that already holds another package's manifest is
refused before anything is written (a registered package is never changed under its
version). Uploads go through the ``PackageUploader`` port, which skips what is already
there with the same digest and resumes what an interrupted run left half done, so
running ``push`` again after a failure sends only what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import AlreadyExists
from modelpilot.package.check import verify_folder
from modelpilot.package.manifest import MANIFEST_NAME

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from modelpilot.ports import PackageUploader, UploadResult

__all__ = ["PushReport", "push_package"]


@dataclass
class PushReport:
    """What one push did, file by file (the manifest last)."""

    destination: str
    model: str
    manifest_digest: str
    files: list[UploadResult] = field(default_factory=list)

    @property
    def manifest_uri(self) -> str:
        """The URI of the uploaded ``modelpilot.json``."""
        return self.files[-1].uri

    def count(self, status: str) -> int:
        """How many files ended with ``status`` (``uploaded``, ``resumed``, ``skipped``)."""
        return sum(1 for f in self.files if f.status == status)

    @property
    def bytes_sent(self) -> int:
        """The size of the files that were not skipped."""
        return sum(f.size for f in self.files if f.status != "skipped")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view."""
        return {
            "destination": self.destination,
            "model": self.model,
            "manifest_digest": self.manifest_digest,
            "manifest_uri": self.manifest_uri,
            "files": [
                {
                    "uri": f.uri,
                    "status": f.status,
                    "size": f.size,
                    "parts_sent": f.parts_sent,
                    "parts_reused": f.parts_reused,
                }
                for f in self.files
            ],
        }


def push_package(
    uploader: PackageUploader,
    root: Path,
    destination: str,
    *,
    on_file: Callable[[str, UploadResult], None] | None = None,
) -> PushReport:
    """Verify the package in ``root`` and upload it under ``destination``, the manifest last.

    ``on_file(path in the package, result)`` is told about each file as it is done.
    """
    checked = verify_folder(root)
    base = destination.rstrip("/")
    manifest_uri = uploader.join(base, MANIFEST_NAME)
    there = uploader.recorded_sha256(manifest_uri)
    if there is not None and there != checked.manifest_sha256:
        raise AlreadyExists(
            f"{manifest_uri} already holds another package's manifest; push each build to its own prefix "
            "(e.g. models/<name>/<commit>/)",
            uri=manifest_uri,
        )
    report = PushReport(base, checked.manifest.name, checked.manifest_digest)
    for artifact in sorted(checked.manifest.artifacts, key=lambda a: a.path):
        result = uploader.upload(
            root / artifact.path, uploader.join(base, artifact.path), sha256=artifact.sha256, size=artifact.size
        )
        report.files.append(result)
        if on_file is not None:
            on_file(artifact.path, result)
    result = uploader.upload(
        root / MANIFEST_NAME,
        manifest_uri,
        sha256=checked.manifest_sha256,
        size=len(checked.manifest_bytes),
        content_type="application/json",
        replace=False,
    )
    report.files.append(result)
    if on_file is not None:
        on_file(MANIFEST_NAME, result)
    return report
