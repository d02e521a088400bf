"""``modelpilot package check``: verify a built package on disk and dry-run the gates that do not need it uploaded.

:func:`verify_folder` reads ``modelpilot.json`` and streams every artifact through
sha256, raising the same typed errors registration raises. :func:`pre_upload_report`
evaluates the gates that depend only on the manifest and the registry's incumbent
(metric thresholds, no-regression) exactly as a promotion evaluates them; the gates
that depend on the registered version (status, order, soak, approvals, monitors)
are listed as skipped, to be evaluated when the version is promoted.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from modelpilot.domain.gates import GateResult, GateStatus, regression_check
from modelpilot.exceptions import ArtifactMissing, DigestMismatch, ManifestMissing, SizeMismatch
from modelpilot.package.builder import file_digest
from modelpilot.package.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES, manifest_digest, parse_manifest

if TYPE_CHECKING:
    from pathlib import Path

    from modelpilot.domain.model import Manifest, ModelVersion
    from modelpilot.policy import EnvironmentGates

__all__ = ["CheckedPackage", "PreUploadReport", "pre_upload_report", "verify_folder"]

_LATER = "evaluated when the registered version is promoted"


@dataclass(frozen=True)
class CheckedPackage:
    """A package folder whose manifest and artifacts verified."""

    manifest: Manifest
    manifest_digest: str
    #: the bytes of modelpilot.json and their sha256 (what ``push`` uploads last)
    manifest_bytes: bytes
    manifest_sha256: str


def verify_folder(root: Path) -> CheckedPackage:
    """Read and verify the package in folder ``root``; raise the typed ``PackageError`` of the first problem."""
    path = root / MANIFEST_NAME
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestMissing(f"{path} is larger than {MAX_MANIFEST_BYTES} bytes", package=str(root))
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise ManifestMissing(
            f"no {MANIFEST_NAME} in {root}: run 'modelpilot package build' first", package=str(root)
        ) from None
    manifest = parse_manifest(raw, source=str(path))
    for artifact in manifest.artifacts:
        file = root / artifact.path
        if not file.is_file():
            raise ArtifactMissing(
                f"artifact {artifact.path} listed in {MANIFEST_NAME} is missing from {root}", file=artifact.path
            )
        sha256, size = file_digest(file)
        if size != artifact.size:
            raise SizeMismatch(
                f"artifact {artifact.path}: size {size} bytes, manifest says {artifact.size}",
                file=artifact.path,
                expected=artifact.size,
                actual=size,
            )
        if sha256 != artifact.sha256:
            raise DigestMismatch(
                f"artifact {artifact.path}: sha256 {sha256}, manifest says {artifact.sha256}",
                file=artifact.path,
                expected=artifact.sha256,
                actual=sha256,
            )
    return CheckedPackage(manifest, manifest_digest(manifest), raw, hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class PreUploadReport:
    """The gates of one environment as far as they can be evaluated before upload."""

    model: str
    environment: str
    manifest_digest: str
    incumbent: int | None
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        """True when no evaluated gate failed."""
        return all(r.status != "failed" for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view, shaped like a promotion's gate report."""
        return {
            "model": self.model,
            "environment": self.environment,
            "manifest_digest": self.manifest_digest,
            "incumbent": self.incumbent,
            "passed": self.passed,
            "gates": [asdict(r) for r in self.results],
        }


def pre_upload_report(
    manifest: Manifest,
    digest: str,
    gates: EnvironmentGates,
    environment: str,
    *,
    previous_environment: str | None,
    incumbent: ModelVersion | None,
) -> PreUploadReport:
    """Dry-run ``gates`` for a package that is not registered yet (``incumbent``: the version in ``environment``)."""
    results: list[GateResult] = [GateResult("status", "skipped", _LATER)]
    if previous_environment is not None:
        results.append(GateResult("order", "skipped", f"{_LATER} (it must be in {previous_environment} first)"))
    for threshold in gates.thresholds:
        value = manifest.metrics.get(threshold.metric)
        name = f"threshold:{threshold.metric}"
        if value is None:
            results.append(
                GateResult(
                    name, "failed", f"metric {threshold.metric!r} missing from the manifest", expected=str(threshold)
                )
            )
            continue
        status: GateStatus = "passed" if threshold.holds(value) else "failed"
        verb = "meets" if status == "passed" else "does not meet"
        results.append(
            GateResult(name, status, f"{threshold.metric}={value:g} {verb} {threshold}", value, str(threshold))
        )
    for rule in gates.no_regression:
        name = f"no_regression:{rule.metric}"
        if incumbent is None:
            results.append(GateResult(name, "skipped", f"no version in {environment} to compare with"))
            continue
        if incumbent.manifest_digest == digest:
            results.append(GateResult(name, "skipped", f"the package is the incumbent v{incumbent.version}"))
            continue
        if rule.source == "mlflow":
            live = "compared on the MLflow runs at promotion time (source: mlflow)"
            results.append(GateResult(name, "skipped", live))
            continue
        new = manifest.metrics.get(rule.metric)
        old = incumbent.manifest.metrics.get(rule.metric)
        if new is None:
            results.append(GateResult(name, "failed", f"metric {rule.metric!r} missing from the candidate"))
            continue
        if old is None:
            results.append(GateResult(name, "skipped", f"incumbent v{incumbent.version} has no {rule.metric!r}"))
            continue
        ok, bound = regression_check(rule, new, old)
        better = "higher" if rule.greater_is_better else "lower"
        results.append(
            GateResult(
                name,
                "passed" if ok else "failed",
                f"{rule.metric}: candidate={new:g} vs incumbent v{incumbent.version}={old:g}; "
                f"needs {'>=' if rule.greater_is_better else '<='} {bound:g} ({better} is better)",
                observed=new,
                expected={"baseline": old, "bound": bound},
            )
        )
    for gate, configured in (
        ("soak", bool(gates.soak)),
        ("approvals", gates.approvals > 0),
        ("no_drift_alert", gates.require_no_drift_alert),
        ("slo_healthy", gates.require_slo_healthy),
    ):
        if configured:
            results.append(GateResult(gate, "skipped", _LATER))
    return PreUploadReport(manifest.name, environment, digest, incumbent.version if incumbent else None, tuple(results))
