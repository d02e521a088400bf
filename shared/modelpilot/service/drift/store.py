"""Where the drift engine keeps things, and the reference profile of a version.

Layout under ``Services.data_root``::

    profiles/<model>/v<version>/reference-profile.json
    captures/<model>/<env>/YYYY/MM/DD/HH/...            (default capture prefix)
    reports/<model>/<env>/<report id>.json | .html
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from modelpilot.drift.builder import build_reference
from modelpilot.drift.io.readers import ReadStats, read_capture
from modelpilot.drift.profile import Profile
from modelpilot.exceptions import ArtifactMissing, DataError, InvalidInput
from modelpilot.policy.drift import DriftPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from modelpilot.domain.model import ModelVersion
    from modelpilot.drift.frames import Chunk
    from modelpilot.service.messagebus import Services

__all__ = ["build_profile_for_version", "checked", "drift_policy", "load_reference", "profile_uri", "report_uris"]


def drift_policy(svc: Services, model: str) -> DriftPolicy:
    """Return the model's drift policy (defaults when the policy has no ``drift`` block)."""
    return svc.policy.model_policy(model).drift or DriftPolicy()


def profile_uri(svc: Services, model: str, version: int) -> str:
    """Return where a version's reference profile lives."""
    return svc.artifacts.join(svc.data_root, "profiles", model, f"v{version}", "reference-profile.json")


def report_uris(svc: Services, model: str, environment: str, rid: str) -> tuple[str, str]:
    """Return the JSON and HTML URIs of a report."""
    base = svc.artifacts.join(svc.data_root, "reports", model, environment)
    return svc.artifacts.join(base, f"{rid}.json"), svc.artifacts.join(base, f"{rid}.html")


def _resolve(svc: Services, version: ModelVersion, uri: str) -> str:
    if "://" in uri or uri.startswith("/") or posixpath.isabs(uri):
        return uri
    return svc.artifacts.join(version.package_uri, uri)


def checked(chunks: Iterator[Chunk], stats: ReadStats, limit: float, what: str) -> Iterator[Chunk]:
    yield from chunks
    if stats.corrupt_share > limit:
        raise DataError(
            f"{what}: {stats.corrupt_share:.1%} of the records are corrupt, more than the policy's "
            f"limit of {limit:.1%} (e.g. {'; '.join(stats.examples[:3])})",
            corrupt_rows=stats.corrupt_rows,
            corrupt_files=stats.corrupt_files,
        )


def build_profile_for_version(
    svc: Services, version: ModelVersion, data_uri: str | None = None
) -> tuple[str, Profile, ReadStats]:
    """Build a version's reference profile from ``data_uri`` (default: the manifest's) and store it."""
    source = data_uri or version.manifest.reference_data_uri
    if not source:
        raise InvalidInput(
            f"{version.model} v{version.version} has no reference data: set reference_data_uri in "
            "its manifest or pass the data explicitly",
            model=version.model,
        )
    uri = _resolve(svc, version, source)
    policy = drift_policy(svc, version.model)
    names = [f.name for f in version.manifest.features]
    stats = ReadStats()
    chunks = checked(
        read_capture(svc.artifacts, uri, names, stats),
        stats,
        policy.max_corrupt_share,
        f"reference data {uri}",
    )
    profile = build_reference(
        chunks,
        version.manifest.features or None,
        bins=policy.bins,
        top_k=policy.top_k,
        meta={
            "model": version.model,
            "version": version.version,
            "source": uri,
            "manifest_digest": version.manifest_digest,
        },
    )
    target = profile_uri(svc, version.model, version.version)
    svc.artifacts.write_bytes(target, profile.to_json(), content_type="application/json")
    return target, profile, stats


def load_reference(svc: Services, version: ModelVersion) -> tuple[str, Profile]:
    """Return the stored reference profile of a version, building it when missing."""
    uri = profile_uri(svc, version.model, version.version)
    try:
        return uri, Profile.from_json(svc.artifacts.read_bytes(uri, max_bytes=256 * 1024 * 1024))
    except ArtifactMissing:
        built_uri, profile, _ = build_profile_for_version(svc, version)
        return built_uri, profile
