"""Build model packages: a folder of artifact files and a ``modelpilot.json`` with their digests.

:func:`build_package` is what ``modelpilot package build`` runs: it lists the files of a
folder, streams each through sha256, reads the metrics (and the feature schema) the
training step wrote, fills the lineage from the CI run, and writes the manifest.
It is reproducible: the same files, metrics, options and CI run give the same
manifest bytes and so the same manifest digest (nothing depends on times, file
order on disk or the machine). :func:`write_package` serves the demo and the tests.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelpilot.exceptions import AlreadyExists, InvalidInput
from modelpilot.package.manifest import MANIFEST_NAME, manifest_digest, parse_manifest

__all__ = [
    "REFERENCE_FOLDER",
    "BuiltPackage",
    "build_manifest",
    "build_package",
    "collect_artifacts",
    "file_digest",
    "read_features",
    "read_metrics",
    "write_package",
]

#: where ``--reference`` copies a reference data file that is not already in the package
REFERENCE_FOLDER = "reference"
_CHUNK = 1024 * 1024


def file_digest(path: Path) -> tuple[str, int]:
    """Return ``(hex sha256, size)`` of a file, streamed in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _file_entry(root: Path, relative: str) -> dict[str, Any]:
    sha256, size = file_digest(root / relative)
    return {"path": relative, "sha256": sha256, "size": size}


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


def manifest_bytes(doc: dict[str, Any]) -> bytes:
    """Return the bytes ``modelpilot.json`` is written with (sorted keys, two-space indent, final newline)."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


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
    path.write_bytes(manifest_bytes(doc))
    return path


# -- modelpilot package build ------------------------------------------------------------------
@dataclass(frozen=True)
class BuiltPackage:
    """What :func:`build_package` wrote."""

    root: Path
    manifest_path: Path
    manifest_digest: str
    document: dict[str, Any]

    @property
    def total_bytes(self) -> int:
        """The size of every artifact together."""
        return sum(int(a["size"]) for a in self.document["artifacts"])


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{what} file {path} does not exist", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {what} file {path}: {exc}", file=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} file {path} is not valid JSON: {exc}", file=str(path)) from None


def read_metrics(path: Path) -> dict[str, float]:
    """Read a metrics file: one JSON object of metric name → finite number."""
    data = _read_json(path, "metrics")
    if not isinstance(data, dict):
        raise InvalidInput(f"metrics file {path} must hold a JSON object of name → number", file=str(path))
    metrics: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(
                f"metrics file {path}: {key!r} is {type(value).__name__}, not a number "
                "(write one flat object of name → number)",
                file=str(path),
                field=key,
            )
        if not math.isfinite(value):
            raise InvalidInput(f"metrics file {path}: {key!r} must be a finite number", file=str(path), field=key)
        metrics[str(key)] = float(value)
    return metrics


def read_features(path: Path) -> list[dict[str, Any]]:
    """Read a feature schema: a JSON list of features, or an object with a ``features`` list.

    Each feature is ``{"name", "type": "numeric"|"categorical", "minimum", "maximum", "allowed_values"}``
    as in the manifest; the manifest schema validates them.
    """
    data = _read_json(path, "feature schema")
    if isinstance(data, dict) and "features" in data:
        data = data["features"]
    if not isinstance(data, list) or not all(isinstance(f, dict) for f in data):
        raise InvalidInput(
            f"feature schema {path} must be a JSON list of features (or an object with a 'features' list)",
            file=str(path),
        )
    return data


def _excluded(relative: str, patterns: tuple[str, ...]) -> bool:
    parts = relative.split("/")
    if any(p.startswith(".") for p in parts):
        return True
    return any(fnmatch.fnmatchcase(relative, p) or fnmatch.fnmatchcase(parts[-1], p) for p in patterns)


def collect_artifacts(root: Path, *, exclude: tuple[str, ...] = ()) -> list[str]:
    """Return the package's files as sorted ``/``-separated paths relative to ``root``.

    Left out: ``modelpilot.json`` at the top, hidden files and folders (a name starting
    with ``.``) and paths matching an ``exclude`` glob. A symbolic link is refused: an
    object store has none, and a link could lead outside the package.
    """
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in [*dirnames, *filenames]:
            if (here / name).is_symlink():
                raise InvalidInput(
                    f"{(here / name).relative_to(root).as_posix()} is a symbolic link: "
                    "copy the file into the package or exclude it",
                    file=str(here / name),
                )
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            relative = (here / name).relative_to(root).as_posix()
            if relative == MANIFEST_NAME or _excluded(relative, exclude):
                continue
            found.append(relative)
    return sorted(found)


def _place_reference(root: Path, reference: str) -> str:
    """Return the manifest's ``reference_data_uri`` for ``--reference`` (copying a file into the package)."""
    if "://" in reference:
        return reference
    source = Path(reference)
    if not source.is_file():
        raise InvalidInput(f"reference data {reference} is not a file", file=reference)
    resolved, base = source.resolve(), root.resolve()
    if resolved.is_relative_to(base):
        return resolved.relative_to(base).as_posix()
    target = root / REFERENCE_FOLDER / source.name
    if target.exists():
        if file_digest(target) != file_digest(source):
            raise AlreadyExists(
                f"{target} already exists with other content than {reference}; remove it or rename the file",
                file=str(target),
            )
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return f"{REFERENCE_FOLDER}/{source.name}"


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build_package(
    root: str | Path,
    *,
    name: str,
    metrics: Path,
    features: Path | None = None,
    reference: str | None = None,
    framework: str = "custom",
    description: str | None = None,
    tags: dict[str, str] | None = None,
    lineage: dict[str, str] | None = None,
    exclude: tuple[str, ...] = (),
) -> BuiltPackage:
    """Write ``root/modelpilot.json`` for the files in ``root`` and return what was written.

    The manifest is validated against the schema before it is written; any problem raises a
    typed error (``InvalidInput``, ``ManifestSchemaError``) and leaves ``root`` unchanged,
    except that a ``reference`` file from outside the package is first copied into
    ``reference/``.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidInput(f"package folder {root} does not exist or is not a folder", file=str(root))
    metric_values = read_metrics(metrics)
    feature_list = read_features(features) if features is not None else []
    reference_uri = _place_reference(root, reference) if reference is not None else None
    artifacts = collect_artifacts(root, exclude=exclude)
    if not artifacts:
        raise InvalidInput(f"package folder {root} holds no artifact file", file=str(root))
    doc = build_manifest(
        root,
        name=name,
        framework=framework,
        metrics=metric_values,
        artifacts=artifacts,
        features=feature_list,
        lineage={k: v for k, v in (lineage or {}).items() if v},
        reference_data_uri=reference_uri,
        description=description,
        tags=tags,
    )
    data = manifest_bytes(doc)
    manifest = parse_manifest(data, source=str(root / MANIFEST_NAME))
    path = root / MANIFEST_NAME
    _write_atomically(path, data)
    return BuiltPackage(root, path, manifest_digest(manifest), doc)
