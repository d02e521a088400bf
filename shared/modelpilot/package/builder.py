"""Build model packages: write artifact files and a manifest with their digests.

Used by the demo, the tests and ``modelpilot package build`` so a package's
manifest always matches its files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from modelpilot.package.manifest import MANIFEST_NAME

__all__ = ["build_manifest", "write_package"]


def _file_entry(root: Path, relative: str) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    with (root / relative).open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return {"path": relative, "sha256": digest.hexdigest(), "size": size}


def build_manifest(
    root: str | Path,
    *,
    name: str,
    framework: str,
    metrics: dict[str, float],
    artifacts: list[str],
    features: list[dict[str, Any]] | None = None,
    lineage: dict[str, Any] | None = None,
    reference_data_uri: str | None = None,
    description: str | None = None,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Return a manifest document for files already in ``root`` (digests computed by streaming)."""
    root = Path(root)
    doc: dict[str, Any] = {
        "schema_version": 1,
        "name": name,
        "framework": framework,
        "metrics": metrics,
        "lineage": lineage or {},
        "features": features or [],
        "artifacts": [_file_entry(root, rel) for rel in artifacts],
    }
    if reference_data_uri is not None:
        doc["reference_data_uri"] = reference_data_uri
    if description is not None:
        doc["description"] = description
    if tags:
        doc["tags"] = tags
    return doc


def write_package(root: str | Path, *, files: dict[str, bytes], **manifest: Any) -> Path:
    """Write ``files`` under ``root`` and a matching ``modelpilot.json``; return the manifest path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    artifacts = manifest.pop("artifacts", None) or [r for r in files if r != manifest.get("reference_data_uri")]
    doc = build_manifest(root, artifacts=artifacts, **manifest)
    path = root / MANIFEST_NAME
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
