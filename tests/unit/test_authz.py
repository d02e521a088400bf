"""Authorization in the service layer: approvals by canonical identity, roles per model and environment, audited denials.

Runs the lifecycle handlers on in-memory fakes; the same checks run on every
backend because they live in ``service/authz.py``, not in an entrypoint.
"""

from __future__ import annotations

import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import ApproveModel, PromoteModel, RegisterModel, RejectModel, RollbackModel
from modelpilot.exceptions import NotAuthorized, PolicyError, UnknownModel
from modelpilot.policy import load_policy_text
from modelpilot.service import queries
from modelpilot.testing import fake_bus

GATED = """
environments: [dev, prod]
defaults:
  environments:
    prod: {approvals: 1, approvers: ["*@example.com", "arn:aws:sts::123456789012:assumed-role/*"]}
"""

ROLES = """
environments: [dev, staging, prod]
roles:
  - {role: admin, members: ["root@example.com"]}
  - {role: promoter, members: ["dev@example.com"], environments: [dev, staging]}
  - {role: approver, members: ["bob@example.com", "carol@example.com"], models: [churn], environments: [prod]}
  - {role: viewer, members: ["auditor@example.com"]}
defaults:
  environments:
    prod: {approvals: 1}
"""


def make_bus(policy: str):
    return fake_bus(load_policy_text(policy), artifacts=FolderArtifactStore())


def denials(bus):
    return [r for r in bus.services.registry.audit_records("churn") if r.action == "deny"]


@pytest.fixture
def gated(make_package):
    bus = make_bus(GATED)
    bus.handle(RegisterModel(package_uri=str(make_package(auc=0.85)), actor="alice@example.com"))
    return bus


def approve(bus, who, env="prod", version=1):
    return bus.handle(ApproveModel(model="churn", version=version, environment=env, approver=who))


@pytest.mark.parametrize("own", ["ALICE@example.com", "alice@example.com  ", "Alice@Example.com"])
def test_the_registrant_cannot_approve_under_another_spelling(gated, own):
    with pytest.raises(NotAuthorized, match="four-eyes"):
        approve(gated, own)
    assert gated.services.registry.list_approvals("churn", 1, "prod") == []
    [record] = denials(gated)
    assert (record.actor, record.environment, record.to_version) == (own, "prod", 1)
    assert record.evidence == {"attempted": "approve"} and "four-eyes" in record.reason


def test_a_doubled_at_sign_is_not_an_example_com_approver(gated):
    with pytest.raises(NotAuthorized):
        approve(gated, "mallory@evil.com@example.com")
    assert gated.services.registry.list_approvals("churn", 1, "prod") == []
    assert len(denials(gated)) == 1


@pytest.mark.parametrize("who", ["claimed:bob@example.com", "anonymous:function-key", "system:ops", "bob @example.com"])
def test_unproven_or_malformed_callers_cannot_approve(gated, who):
    with pytest.raises(NotAuthorized, match="cannot approve"):
        approve(gated, who)
    assert len(denials(gated)) == 1


def test_one_person_in_two_spellings_is_one_approval(gated):
    assert approve(gated, "carol@example.com").status == "approved"
    assert approve(gated, "CAROL@example.com ").status == "unchanged"
    [stored] = gated.services.registry.list_approvals("churn", 1, "prod")
    assert stored.approver == "carol@example.com"


def test_two_sessions_of_one_role_are_one_approval(gated):
    role = "arn:aws:sts::123456789012:assumed-role/Approvers"
    assert approve(gated, f"{role}/alice-1").status == "approved"
    assert approve(gated, f"{role}/alice-2").status == "unchanged"


def test_operators_patterns_match_whole_identities(make_package):
    bus = make_bus("environments: [dev]\noperators: ['*@example.com']\n")
    bus.handle(RegisterModel(package_uri=str(make_package(auc=0.85)), actor="system:s3-upload"))
    with pytest.raises(NotAuthorized, match="operators"):
        bus.handle(PromoteModel(model="churn", environment="dev", actor="mallory@evil.com@example.com", version=1))
    assert bus.services.registry.get_alias("churn", "dev") is None
    assert [r.evidence for r in denials(bus)] == [{"attempted": "promote"}]
    ok = bus.handle(PromoteModel(model="churn", environment="dev", actor="OPS@example.com", version=1))
    assert ok.status == "promoted"


# -- roles ---------------------------------------------------------------------------
@pytest.fixture
def roles(make_package):
    bus = make_bus(ROLES)
    bus.handle(RegisterModel(package_uri=str(make_package(auc=0.85)), actor="system:s3-upload"))
    return bus


def promote(bus, env, actor):
    return bus.handle(PromoteModel(model="churn", environment=env, actor=actor, version=1))


@pytest.mark.parametrize("actor", ["auditor@example.com", "bob@example.com", "nobody"])
def test_without_a_promoter_role_promotion_is_refused_and_audited(roles, actor):
    with pytest.raises(NotAuthorized, match="no role in the policy allows it") as caught:
        promote(roles, "dev", actor)
    assert caught.value.details == {"actor": actor, "action": "promote"}
    assert roles.services.registry.get_alias("churn", "dev") is None
    [record] = denials(roles)
    assert (record.actor, record.environment, record.evidence) == (actor, "dev", {"attempted": "promote"})


def test_a_promoter_is_limited_to_its_environments(roles):
    assert promote(roles, "dev", "dev@example.com").status == "promoted"
    assert promote(roles, "staging", "dev@example.com").status == "promoted"
    with pytest.raises(NotAuthorized):
        promote(roles, "prod", "dev@example.com")
    with pytest.raises(NotAuthorized):
        roles.handle(RollbackModel(model="churn", environment="prod", actor="dev@example.com", reason="x"))
    assert [r.evidence["attempted"] for r in denials(roles)] == ["promote", "rollback"]


def test_approver_role_approves_but_does_not_promote_and_admin_does_both(roles):
    assert promote(roles, "dev", "root@example.com").status == "promoted"
    assert promote(roles, "staging", "root@example.com").status == "promoted"
    assert approve(roles, "bob@example.com").status == "approved"
    with pytest.raises(NotAuthorized):
        promote(roles, "prod", "bob@example.com")
    assert promote(roles, "prod", "ROOT@example.com").status == "promoted"


def test_approver_role_is_per_model_and_environment(roles):
    with pytest.raises(NotAuthorized, match="may not approve churn in staging"):
        approve(roles, "bob@example.com", env="staging")
    with pytest.raises(NotAuthorized):
        approve(roles, "auditor@example.com")  # a viewer only
    assert [r.actor for r in denials(roles)] == ["bob@example.com", "auditor@example.com"]


def test_reject_needs_an_approver_or_admin(roles):
    with pytest.raises(NotAuthorized):
        roles.handle(RejectModel(model="churn", version=1, actor="dev@example.com", reason="leak"))
    assert roles.services.registry.get_version("churn", 1).status == "registered"
    ok = roles.handle(RejectModel(model="churn", version=1, actor="bob@example.com", reason="leak"))
    assert ok.status == "rejected"


def test_system_actors_are_not_restricted_by_roles(roles):
    assert promote(roles, "dev", "system:s3-upload").status == "promoted"
    assert denials(roles) == []


def test_without_roles_behaviour_is_unchanged(make_package):
    bus = make_bus("environments: [dev]\n")
    bus.handle(RegisterModel(package_uri=str(make_package(auc=0.85)), actor="alice"))
    assert promote(bus, "dev", "anyone").status == "promoted"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("roles: [{role: admin, members: [a], environments: [moon]}]", "moon"),
        ("operators: [a]\nroles: [{role: admin, members: [a]}]", "either operators or roles"),
        ("roles: [{role: owner, members: [a]}]", "roles.0.role"),
        ("roles: [{role: admin, members: []}]", "roles.0.members"),
        ("roles: [{role: admin, members: [a], extra: 1}]", "roles.0.extra"),
    ],
)
def test_a_bad_roles_block_is_a_policy_error(text, where):
    with pytest.raises(PolicyError, match=where):
        load_policy_text(text)


def test_the_view_decision_follows_the_roles(roles):
    from modelpilot.service.authz import denial

    svc = roles.services
    assert denial(svc, "auditor@example.com", "view", "churn", "prod") is None
    assert denial(svc, "dev@example.com", "view", "churn", "dev") is None  # a promoter may read
    assert "no role" in (denial(svc, "stranger@example.com", "view", "churn", "prod") or "")
    assert denials(roles) == []  # asking is not an attempt: nothing audited


# -- reads: the view action --------------------------------------------------------------
@pytest.mark.parametrize(
    ("reader", "env"),
    [
        ("auditor@example.com", "prod"),
        ("dev@example.com", "dev"),
        ("bob@example.com", "prod"),
        ("root@example.com", "dev"),
    ],
)
def test_every_role_may_read_where_it_is_granted(roles, reader, env):
    svc = roles.services
    assert [r["model"] for r in queries.read_status(svc, reader, "churn")] == ["churn"] * 3
    assert queries.read_history(svc, reader, "churn", env) == []
    assert [r["action"] for r in queries.read_audit(svc, reader, "churn")] == ["register"]
    assert denials(roles) == []


def test_a_role_limited_to_some_environments_reads_only_those(roles):
    with pytest.raises(NotAuthorized, match="may not view churn in dev"):
        queries.read_history(roles.services, "bob@example.com", "churn", "dev")
    assert [r.evidence["attempted"] for r in denials(roles)] == ["view"]


def test_a_stranger_is_refused_every_read_and_each_refusal_is_audited(roles):
    svc, before = roles.services, roles.services.registry.get_alias("churn", "dev")
    reads = [
        lambda: queries.read_status(svc, "nobody@example.org", "churn"),
        lambda: queries.read_history(svc, "nobody@example.org", "churn", "dev"),
        lambda: queries.read_version_at(svc, "nobody@example.org", "churn", "dev", svc.clock()),
        lambda: queries.read_audit(svc, "nobody@example.org", "churn"),
        lambda: queries.read_incident(svc, "nobody@example.org", "churn", "dev"),
    ]
    for read in reads:
        with pytest.raises(NotAuthorized, match="may not view churn"):
            read()
    assert [(r.actor, r.evidence["attempted"]) for r in denials(roles)] == [("nobody@example.org", "view")] * 5
    assert svc.registry.get_alias("churn", "dev") == before
    # the fleet-wide status names no model: refused (not audited) when the caller may view none
    with pytest.raises(NotAuthorized, match="may not view any model"):
        queries.read_status(svc, "nobody@example.org")
    assert len(denials(roles)) == 5


def test_a_viewer_limited_to_some_models_sees_only_those_in_the_fleet_status(make_package):
    bus = make_bus(
        ROLES.replace(
            '{role: viewer, members: ["auditor@example.com"]}',
            '{role: viewer, members: ["auditor@example.com"], models: [fraud]}',
        )
    )
    bus.handle(RegisterModel(package_uri=str(make_package("churn", auc=0.85)), actor="system:s3-upload"))
    bus.handle(RegisterModel(package_uri=str(make_package("fraud", auc=0.85)), actor="system:s3-upload"))
    rows = queries.read_status(bus.services, "auditor@example.com")
    assert {r["model"] for r in rows} == {"fraud"}
    assert {r["model"] for r in queries.read_status(bus.services, "root@example.com")} == {"churn", "fraud"}
    with pytest.raises(NotAuthorized):
        queries.read_status(bus.services, "auditor@example.com", "churn")


def test_without_roles_anyone_reads_and_nothing_is_audited(gated):
    svc = gated.services
    assert queries.read_status(svc, "nobody@example.org", "churn")
    assert queries.read_status(svc, "nobody@example.org")
    assert queries.read_history(svc, "nobody@example.org", "churn", "dev") == []
    assert [r["action"] for r in queries.read_audit(svc, "nobody@example.org", "churn")] == ["register"]


def test_a_read_of_an_unknown_model_is_not_found_and_audits_nothing(roles):
    with pytest.raises(UnknownModel):
        queries.read_history(roles.services, "nobody@example.org", "fraud", "dev")
    assert roles.services.registry.audited_models() == ["churn"]
