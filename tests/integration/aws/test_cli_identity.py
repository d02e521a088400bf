"""``modelpilot --backend aws`` acts as the caller's credentials say, not as ``--actor`` says (moto's server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.aws import REGION, create_stack, put_policy, upload_package

CLI = Path(sys.executable).parent / "modelpilot"
ROLE = "arn:aws:sts::123456789012:assumed-role/approvers"
POLICY = """\
version: 1
environments: [dev, prod]
delegates: ["arn:aws:sts::123456789012:assumed-role/release"]
defaults:
  environments:
    prod: {approvals: 2}
"""


@pytest.fixture
def stack(request, make_package):
    stack = create_stack(request)
    put_policy(stack, POLICY)
    key = upload_package(stack, make_package("churn"), "models/churn/v1")
    stack.package = f"s3://{stack.bucket}/{key[:-16]}"
    return stack


def session(stack, role: str, name: str) -> dict[str, str]:
    """Temporary credentials of ``role`` with a session name the caller picks."""
    creds = stack.client("sts").assume_role(RoleArn=f"arn:aws:iam::123456789012:role/{role}", RoleSessionName=name)[
        "Credentials"
    ]
    return {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }


def run(stack, tmp_path, *args, creds=None, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MODELPILOT_"))}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        HOME=str(tmp_path),
        MODELPILOT_REGISTRY_TABLE=stack.registry_table,
        MODELPILOT_MODEL_BUCKET=stack.bucket,
        MODELPILOT_EVENT_BUS=stack.event_bus,
        MODELPILOT_TOPIC_ARN=stack.topic_arn,
    )
    env.update(creds or {})
    env.update(env_extra or {})
    command = [str(CLI), *args, "--backend", "aws", "--endpoint-url", stack.endpoint, "--region", REGION]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)


def approvers(stack):
    from modelpilot.adapters.aws.registry import DynamoDbRegistry

    registry = DynamoDbRegistry(stack.registry_table, stack.client("dynamodb"))
    return registry, sorted(a.approver for a in registry.list_approvals("churn", 1, "prod"))


def test_the_actor_is_the_credentials_principal(stack, tmp_path):
    done = run(stack, tmp_path, "register", stack.package, "--json", creds=session(stack, "Approvers", "alice-1"))
    assert done.returncode == 0, done.stderr
    registry, _ = approvers(stack)
    assert registry.get_version("churn", 1).registered_by == ROLE


def test_two_sessions_of_one_role_are_one_approval(stack, tmp_path):
    assert run(stack, tmp_path, "register", stack.package).returncode == 0
    for name in ("alice-1", "alice-2"):
        done = run(stack, tmp_path, "approve", "churn", "1", "--env", "prod", creds=session(stack, "Approvers", name))
        assert done.returncode == 0, done.stderr
    _, names = approvers(stack)
    assert names == [ROLE]


@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_claimed_name_is_recorded_as_claimed_and_cannot_approve(stack, tmp_path, how):
    claim = ["--actor", "bob@example.com"] if how == "flag" else []
    extra = {"MODELPILOT_ACTOR": "bob@example.com"} if how == "env" else {}
    done = run(stack, tmp_path, "register", stack.package, *claim, env_extra=extra)
    assert done.returncode == 0, done.stderr
    registry, _ = approvers(stack)
    assert registry.get_version("churn", 1).registered_by == "claimed:bob@example.com"
    done = run(stack, tmp_path, "approve", "churn", "1", "--env", "prod", *claim, env_extra=extra)
    assert done.returncode == 5, done.stdout + done.stderr
    assert "cannot approve" in done.stderr
    assert approvers(stack)[1] == []


def test_a_delegate_acts_for_the_person_it_names(stack, tmp_path):
    assert run(stack, tmp_path, "register", stack.package).returncode == 0
    release = session(stack, "Release", "gh-run-42")
    done = run(stack, tmp_path, "approve", "churn", "1", "--env", "prod", "--actor", "github:Carol", creds=release)
    assert done.returncode == 0, done.stderr
    # a delegate cannot borrow a principal's name, nor ModelPilot's
    done = run(stack, tmp_path, "approve", "churn", "1", "--env", "prod", "--actor", f"{ROLE}/x", creds=release)
    assert done.returncode == 5
    done = run(stack, tmp_path, "approve", "churn", "1", "--env", "prod", "--actor", "system:ops", creds=release)
    assert done.returncode == 2 and "system:" in done.stderr
    assert approvers(stack)[1] == ["github:carol"]
