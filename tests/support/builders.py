"""Builders for test data: manifests, versions, alias changes, audit entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelpilot.domain.audit import AuditEntry
from modelpilot.domain.model import AliasChange, ArtifactFile, FeatureSpec, Lineage, Manifest

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def manifest(name: str = "churn", *, auc: float = 0.85, seed: str = "a", **metrics: float) -> Manifest:
    """Return a small valid manifest; ``seed`` changes its digest."""
    return Manifest(
        name=name,
        framework="numpy-logreg",
        metrics={"auc": auc, **metrics},
        lineage=Lineage(run_id=f"run-{seed}", code_revision="abc123", training_data_uri="s3://data/x"),
        features=(FeatureSpec("x", "numeric", 0.0, 10.0), FeatureSpec("plan", "categorical", None, None, ("a", "b"))),
        artifacts=(ArtifactFile("model.bin", "0" * 64, 10),),
    )


def entry(model: str = "churn", action: str = "test", **kw: Any) -> AuditEntry:
    return AuditEntry(
        model=model, actor=kw.pop("actor", "tester"), action=action, timestamp=kw.pop("timestamp", T0), **kw
    )


def change(
    model: str,
    env: str,
    revision: int,
    frm: int | None,
    to: int,
    *,
    action: str = "promote",
    at: datetime | None = None,
    trigger: str | None = None,
) -> AliasChange:
    return AliasChange(
        model=model,
        environment=env,
        revision=revision,
        from_version=frm,
        to_version=to,
        action=action,
        actor="tester",
        reason="test",
        at=at or T0 + timedelta(minutes=revision),
        trigger=trigger,
    )  # type: ignore[arg-type]
