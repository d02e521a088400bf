"""Identities: canonical forms, whole-identity patterns, and the approval gate that counts people once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelpilot.domain import identity
from modelpilot.domain.gates import GateContext, check_approvals
from modelpilot.domain.model import Approval, ModelVersion
from modelpilot.policy import EnvironmentGates
from tests.support.builders import T0, manifest

ROLE = "arn:aws:sts::123456789012:assumed-role/Approvers"


def version(by: str) -> ModelVersion:
    return ModelVersion("churn", 2, "d2", manifest(seed="2", auc=0.85), "pkg", by, T0)


def approvals_gate(by: str, approvers: list[str], gates: EnvironmentGates):
    ctx = GateContext(
        candidate=version(by),
        environment="prod",
        now=T0 + timedelta(hours=5),
        previous_environment="staging",
        in_previous_since=T0,
        approvals=[Approval("churn", 2, "prod", a, T0) for a in approvers],
    )
    [result] = check_approvals(gates, ctx)
    return result


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ALICE@example.com", "alice@example.com"),
        ("carol", "CAROL"),
        ("carol  ", "carol"),
        (f"{ROLE}/alice-1", f"{ROLE}/alice-2"),
        (f"{ROLE}/alice-1", ROLE.lower()),
    ],
)
def test_the_same_principal_written_differently_is_one_identity(a, b):
    assert identity.same(a, b)
    assert identity.canonical(a) == identity.canonical(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("alice@example.com", "alice@example.org"),
        ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"),
        (f"{ROLE}/alice-1", "arn:aws:sts::123456789012:assumed-role/Deployers/alice-1"),
        (f"{ROLE}/x", "arn:aws:sts::210987654321:assumed-role/Approvers/x"),
    ],
)
def test_different_principals_stay_different(a, b):
    assert not identity.same(a, b)


def test_aws_principal_keeps_users_and_drops_session_names():
    assert identity.aws_principal("arn:aws:iam::123456789012:user/alice") == "arn:aws:iam::123456789012:user/alice"
    assert identity.aws_principal(f"{ROLE}/alice-1") == ROLE.lower()
    # a SourceIdentity is set once, when the first role is assumed, and names the person
    assert (
        identity.aws_principal(f"{ROLE}/any-session", source_identity="Alice")
        == "aws:123456789012:source-identity/alice"
    )
    # an IAM user has no source identity: the argument changes nothing
    assert identity.aws_principal("arn:aws:iam::1:user/bob", source_identity="x") == "arn:aws:iam::1:user/bob"


@pytest.mark.parametrize(
    ("who", "pattern", "expected"),
    [
        ("alice@example.com", "*@example.com", True),
        ("ALICE@Example.COM ", "*@example.com", True),
        ("mallory@evil.com@example.com", "*@example.com", False),  # two '@': not an identity
        ("mallory evil@example.com", "*@example.com", False),  # a space: not an identity
        ("claimed:alice@example.com", "*@example.com", False),  # '*' does not cross ':'
        ("arn:aws:iam::1:role/x@example.com", "*@example.com", False),  # nor '/'
        (f"{ROLE}/alice-1", "arn:aws:sts::123456789012:assumed-role/approvers", True),
        (f"{ROLE}/alice-1", "arn:aws:sts::123456789012:assumed-role/*", True),
        ("arn:aws:iam::123456789012:user/team/bob", "arn:aws:iam::123456789012:user/*", False),
        ("arn:aws:iam::123456789012:user/team/bob", "arn:aws:iam::123456789012:user/**", True),
        ("bob", "b?b", True),
        ("", "**", False),
        ("", "*", False),  # an empty identity is not well-formed
        ("a" * 500, "*a" * 30 + "*b", False),  # a backtracking matcher takes hours here
        ("a" * 500 + "b", "*a" * 30 + "*b", True),
        ("a:b", "a?b", False),
        ("a:b", "a**b", True),
        ("a" * 600, "**", False),
    ],
)
def test_patterns_match_whole_canonical_identities(who, pattern, expected):
    assert identity.matches(who, pattern) is expected


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("alice@example.com", True),
        (f"{ROLE}/s", True),
        ("entra:9f1c2d3e-0000-4000-8000-000000000001", True),
        ("claimed:alice", False),
        ("anonymous:function-key", False),
        ("system:ops", False),
        ("a@b@c", False),
        ("tab\there", False),
        ("   ", False),
        ("function-key", False),  # approvals stored before key holders were marked anonymous
        ("console", False),
    ],
)
def test_only_proven_well_formed_identities_can_approve(who, expected):
    assert identity.can_approve(who) is expected


def test_four_eyes_ignores_case_and_spaces():
    gates = EnvironmentGates(approvals=1)
    for own in ["ALICE@example.com", " alice@example.com", "alice@example.com\n"]:
        result = approvals_gate("alice@example.com", [own], gates)
        assert result.status == "failed" and "(registrant, four-eyes)" in result.reason


def test_one_person_written_twice_counts_once():
    gates = EnvironmentGates(approvals=2)
    result = approvals_gate("alice", ["carol", "CAROL", "carol "], gates)
    assert result.status == "failed" and result.observed == ["carol"]
    assert approvals_gate("alice", ["carol", "dave"], gates).status == "passed"


def test_one_role_with_two_session_names_cannot_meet_two_approvals():
    gates = EnvironmentGates(approvals=2)
    result = approvals_gate("system:s3-upload", [f"{ROLE}/alice-1", f"{ROLE}/alice-2"], gates)
    assert result.status == "failed" and result.observed == [ROLE.lower()]


def test_an_address_with_two_ats_is_not_an_allowed_approver():
    gates = EnvironmentGates(approvals=1, approvers=["*@example.com"])
    result = approvals_gate("alice", ["mallory@evil.com@example.com"], gates)
    assert result.status == "failed" and result.observed == []
    assert approvals_gate("alice", ["bob@example.com"], gates).status == "passed"


def test_unproven_identities_never_count():
    gates = EnvironmentGates(approvals=1)
    result = approvals_gate("alice", ["claimed:bob", "anonymous:function-key", "system:ops"], gates)
    assert result.status == "failed" and result.observed == []


def test_the_matcher_agrees_with_the_documented_regular_expression():
    """``*`` = ``[^@/:]*``, ``?`` = ``[^@/:]``, ``**`` = ``.*``, on every short identity and pattern over a small alphabet."""
    import itertools
    import re

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = [], 0
        while i < len(pattern):
            if pattern.startswith("**", i):
                out.append(".*")
                i += 2
                continue
            out.append({"*": "[^@/:]*", "?": "[^@/:]"}.get(pattern[i], re.escape(pattern[i])))
            i += 1
        return re.compile("".join(out), re.DOTALL)

    texts = ["".join(t) for n in range(1, 5) for t in itertools.product("a@:", repeat=n)]
    patterns = ["".join(p) for n in range(0, 4) for p in itertools.product(["a", "@", ":", "*", "?", "**"], repeat=n)]
    for text in texts:
        for pattern in patterns:
            expected = identity.is_well_formed(text) and regex(pattern).fullmatch(text) is not None
            assert identity.matches(text, pattern) is expected, (text, pattern)
