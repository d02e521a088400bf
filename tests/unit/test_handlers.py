"""The registry lifecycle through the message bus, on in-memory fakes (packages on disk)."""

from __future__ import annotations

import json

import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.audit import verify_chain
from modelpilot.domain.commands import (
    ApproveModel,
    PromoteModel,
    RecordMonitorStatus,
    RegisterModel,
    RejectModel,
    RollbackModel,
)
from modelpilot.exceptions import (
    ArtifactMissing,
    DigestMismatch,
    InvalidInput,
    ManifestInvalidJSON,
    ManifestMissing,
    ManifestSchemaError,
    NotAuthorized,
    SizeMismatch,
    UnknownEnvironment,
    UnknownModel,
)
from modelpilot.policy import load_policy_text
from modelpilot.testing import fake_bus

POLICY = """
environments: [dev, staging, prod]
operators: ["alice", "carol", "system:*"]
defaults:
  environments:
    staging:
      thresholds: ["auc >= 0.80"]
      no_regression: [{metric: auc, min_absolute_change: -0.01}]
    prod:
      soak: 1h
      approvals: 1
"""


@pytest.fixture
def bus():
    return fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore())


def registry(bus):
    return bus.services.registry


def register(bus, pkg, actor="alice", **kw):
    return bus.handle(RegisterModel(package_uri=str(pkg), actor=actor, **kw))


def promote(bus, env, version=None, actor="alice", **kw):
    return bus.handle(PromoteModel(model="churn", environment=env, actor=actor, version=version, **kw))


def to_prod(bus, version):
    assert promote(bus, "dev", version).status in {"promoted", "unchanged"}
    assert promote(bus, "staging", version).status == "promoted"
    bus.services.clock.advance(3600)
    bus.handle(ApproveModel(model="churn", version=version, environment="prod", approver="bob"))
    outcome = promote(bus, "prod", version)
    assert outcome.status == "promoted", outcome.message


# -- registration ------------------------------------------------------------------
def test_register_assigns_versions_and_is_idempotent(bus, make_package):
    p1, p2 = make_package(auc=0.85), make_package(auc=0.9)
    first = register(bus, p1)
    assert (first.status, first.data["version"]) == ("registered", 1)
    assert register(bus, p2).data["version"] == 2
    again = register(bus, p1 / "modelpilot.json")
    assert (again.status, again.data["version"]) == ("unchanged", 1)
    assert [r.action for r in registry(bus).audit_records("churn")] == ["register", "register"]
    assert bus.services.publisher.names() == ["ModelRegistered", "ModelRegistered"]
    stored = registry(bus).get_version("churn", 1)
    assert stored.registered_by == "alice" and stored.package_uri == str(p1)


def test_register_with_auto_promote_runs_first_environment_gates(bus, make_package):
    outcome = register(bus, make_package(), auto_promote=True, trigger="s3://b/k#etag")
    assert outcome.data["promotion"]["status"] == "promoted"
    assert registry(bus).get_alias("churn", "dev").version == 1


def _corrupt(pkg, mutate):
    path = pkg / "modelpilot.json"
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("breakage", "error", "detail"),
    [
        (lambda p: (p / "modelpilot.json").unlink(), ManifestMissing, None),
        (lambda p: (p / "modelpilot.json").write_text("{not json"), ManifestInvalidJSON, None),
        (lambda p: _corrupt(p, lambda d: d.pop("framework")), ManifestSchemaError, ("field", "framework")),
        (
            lambda p: _corrupt(p, lambda d: d["metrics"].update(auc="high")),
            ManifestSchemaError,
            ("field", "metrics.auc"),
        ),
        (
            lambda p: _corrupt(p, lambda d: d["artifacts"][0].update(path="../etc/passwd")),
            ManifestSchemaError,
            ("field", "artifacts.0.path"),
        ),
        (lambda p: _corrupt(p, lambda d: d.update(name="Bad Name")), ManifestSchemaError, ("field", "name")),
        (lambda p: (p / "model.bin").unlink(), ArtifactMissing, ("file", "model.bin")),
        (
            lambda p: (p / "model.bin").write_bytes(b"tampered-weights-of-other-length"),
            SizeMismatch,
            ("file", "model.bin"),
        ),
        (
            lambda p: (p / "model.bin").write_bytes(b"X" * (p / "model.bin").stat().st_size),
            DigestMismatch,
            ("file", "model.bin"),
        ),
    ],
)
def test_bad_packages_raise_typed_errors_and_leave_nothing(bus, make_package, breakage, error, detail):
    pkg = make_package()
    breakage(pkg)
    with pytest.raises(error) as info:
        register(bus, pkg)
    if detail:
        assert info.value.details[detail[0]] == detail[1]
    assert registry(bus).list_models() == []
    assert bus.services.publisher.events == []


def test_digest_mismatch_message_names_file_and_digests(bus, make_package):
    pkg = make_package()
    size = (pkg / "model.bin").stat().st_size
    (pkg / "model.bin").write_bytes(b"Y" * size)
    with pytest.raises(DigestMismatch, match=r"artifact model\.bin: sha256 [0-9a-f]{64}, manifest says [0-9a-f]{64}"):
        register(bus, pkg)


# -- promotion ---------------------------------------------------------------------
def test_full_promotion_path_with_gates(bus, make_package):
    register(bus, make_package(auc=0.85))
    to_prod(bus, 1)
    alias = registry(bus).get_alias("churn", "prod")
    assert (alias.version, alias.revision) == (1, 1)
    record = registry(bus).audit_records("churn")[-1]
    assert record.action == "promote" and record.environment == "prod" and record.gate_report_digest
    assert verify_chain("churn", registry(bus).audit_records("churn")).ok


def test_blocked_promotion_changes_nothing_and_says_why(bus, make_package):
    register(bus, make_package(auc=0.75))
    promote(bus, "dev", 1)
    before = len(registry(bus).audit_records("churn"))
    outcome = promote(bus, "staging", 1)
    assert outcome.status == "blocked"
    assert "auc=0.75 does not meet auc >= 0.8" in outcome.message
    assert registry(bus).get_alias("churn", "staging") is None
    assert len(registry(bus).audit_records("churn")) == before
    assert bus.services.publisher.names()[-1] == "PromotionBlocked"
    assert bus.services.notifier.sent[-1][0] == "[modelpilot] PromotionBlocked"


def test_prod_needs_soak_and_approval_from_someone_else(bus, make_package):
    register(bus, make_package(auc=0.85))
    promote(bus, "dev", 1)
    promote(bus, "staging", 1)
    blocked = promote(bus, "prod", 1)
    assert {g["gate"] for g in blocked.data["gate_report"]["gates"] if g["status"] == "failed"} == {"soak", "approvals"}
    with pytest.raises(NotAuthorized, match="four-eyes"):
        bus.handle(ApproveModel(model="churn", version=1, environment="prod", approver="alice"))
    bus.handle(ApproveModel(model="churn", version=1, environment="prod", approver="bob"))
    assert bus.handle(ApproveModel(model="churn", version=1, environment="prod", approver="bob")).status == "unchanged"
    bus.services.clock.advance(3600)
    assert promote(bus, "prod", 1).status == "promoted"


def test_promote_defaults_to_version_in_previous_environment_and_is_idempotent(bus, make_package):
    register(bus, make_package(auc=0.85))
    promote(bus, "dev", 1)
    assert promote(bus, "staging").data["version"] == 1
    again = promote(bus, "staging")
    assert again.status == "unchanged"
    assert [c.revision for c in registry(bus).alias_history("churn", "staging")] == [1]


def test_promote_order_and_unknowns(bus, make_package):
    register(bus, make_package(auc=0.85))
    assert promote(bus, "staging", 1).status == "blocked"  # not in dev yet
    with pytest.raises(UnknownEnvironment):
        promote(bus, "qa", 1)
    with pytest.raises(UnknownModel):
        bus.handle(PromoteModel(model="nope", environment="dev", actor="alice"))


def test_operators_list_is_enforced(bus, make_package):
    register(bus, make_package(auc=0.85))
    with pytest.raises(NotAuthorized, match="not in the policy's operators"):
        promote(bus, "dev", 1, actor="mallory")
    assert promote(bus, "dev", 1, actor="system:s3-upload").status == "promoted"


def test_rejected_version_cannot_be_promoted(bus, make_package):
    register(bus, make_package(auc=0.85))
    assert bus.handle(RejectModel(model="churn", version=1, actor="carol", reason="leak")).status == "rejected"
    assert bus.handle(RejectModel(model="churn", version=1, actor="carol", reason="leak")).status == "unchanged"
    assert promote(bus, "dev", 1).status == "blocked"


def test_drift_status_gate_reads_registry(make_package):
    policy = load_policy_text(POLICY.replace("approvals: 1", "approvals: 0\n      require_no_drift_alert: true"))
    bus = fake_bus(policy, artifacts=FolderArtifactStore())
    register(bus, make_package(auc=0.85))
    promote(bus, "dev", 1)
    promote(bus, "staging", 1)
    bus.handle(
        RecordMonitorStatus(
            model="churn", environment="staging", kind="drift", state="alert", version=1, summary="psi 0.4"
        )
    )
    bus.services.clock.advance(3600)
    blocked = promote(bus, "prod", 1)
    assert blocked.status == "blocked" and "open alert in staging" in blocked.message
    bus.handle(RecordMonitorStatus(model="churn", environment="staging", kind="drift", state="ok", version=1))
    assert promote(bus, "prod", 1).status == "promoted"


# -- rollback ----------------------------------------------------------------------
def test_rollback_to_last_healthy_version_and_idempotency(bus, make_package):
    for auc in (0.85, 0.86, 0.87):
        register(bus, make_package(auc=auc))
    for v in (1, 2, 3):
        to_prod(bus, v)
    first = bus.handle(
        RollbackModel(
            model="churn", environment="prod", actor="carol", reason="errors", from_version=3, trigger="alarm-1"
        )
    )
    assert (first.status, first.data["from_version"], first.data["version"]) == ("rolled_back", 3, 2)
    # the same alarm again: nothing
    again = bus.handle(
        RollbackModel(
            model="churn", environment="prod", actor="carol", reason="errors", from_version=3, trigger="alarm-1"
        )
    )
    assert again.status == "noop"
    # conditional on a version no longer live: nothing
    stale = bus.handle(RollbackModel(model="churn", environment="prod", actor="carol", reason="errors", from_version=3))
    assert stale.status == "noop" and "no longer runs v3" in stale.message
    second = bus.handle(RollbackModel(model="churn", environment="prod", actor="carol", reason="still bad"))
    assert second.data["version"] == 1
    assert [c.to_version for c in registry(bus).alias_history("churn", "prod")] == [1, 2, 3, 2, 1]
    nothing = bus.handle(RollbackModel(model="churn", environment="prod", actor="carol", reason="more"))
    assert nothing.status == "noop" and "no earlier healthy version" in nothing.message
    rollbacks = [r for r in registry(bus).audit_records("churn") if r.action == "rollback"]
    assert len(rollbacks) == 2 and rollbacks[0].trigger == "alarm-1" and rollbacks[0].reason == "errors"
    assert "ModelRolledBack" in bus.services.publisher.names()


def test_explicit_rollback_target_validation(bus, make_package):
    register(bus, make_package(auc=0.85))
    register(bus, make_package(auc=0.86))
    to_prod(bus, 1)
    to_prod(bus, 2)
    bus.handle(RejectModel(model="churn", version=1, actor="carol", reason="bad"))
    with pytest.raises(InvalidInput, match="rejected"):
        bus.handle(RollbackModel(model="churn", environment="prod", actor="carol", reason="x", to_version=1))
    assert bus.handle(RollbackModel(model="churn", environment="prod", actor="carol", reason="x")).status == "noop"
