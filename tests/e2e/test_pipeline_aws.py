"""The example model repository's GitHub workflow, step by step, against a stack on moto's server.

The workflow's ``run:`` steps execute in order with a hosted runner's environment; the
OIDC sign-in step is played by pointing the AWS SDK at moto; the upload function
(functions/aws/model_upload.py) receives each manifest's "Object Created" event as the
stack's EventBridge rule delivers it. The package is built, checked, pushed, registered,
auto-promoted to dev, approved by the GitHub environment's reviewer, promoted to
staging, and ``wait`` reports each stage.
"""

from __future__ import annotations

import filecmp
import json
import os

import pytest

from modelpilot.bootstrap import get_bus
from modelpilot.domain.audit import verify_chain
from tests.support.aws import put_policy
from tests.support.aws_events import LambdaContext, handler, handler_stack, object_created
from tests.support.github_runner import JobFailed
from tests.support.pipeline import APPROVER, EXAMPLE, GITHUB, TEMPLATES, Platform, common_actions, runner, workspace

pytestmark = pytest.mark.integration
upload = handler("model_upload")
ROLE = "arn:aws:iam::123456789012:role/modelpilot-release-churn"


@pytest.fixture
def aws_stack(request, monkeypatch):
    yield from handler_stack(request, monkeypatch)


def test_the_example_uses_the_published_templates():
    pairs = [
        (TEMPLATES / "github" / "modelpilot-release.yml", EXAMPLE / ".github" / "workflows" / "modelpilot-release.yml"),
        (TEMPLATES / "azure-pipelines" / "modelpilot-release.yml", EXAMPLE / "ci" / "modelpilot-release.yml"),
        (
            TEMPLATES / "gitlab" / "modelpilot-release.gitlab-ci.yml",
            EXAMPLE / "ci" / "modelpilot-release.gitlab-ci.yml",
        ),
    ]
    for template, copy in pairs:
        assert filecmp.cmp(template, copy, shallow=False), f"{copy} differs from {template}"


def _platform(stack):
    s3 = stack.client("s3")

    def discover():
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix="models/"):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/modelpilot.json"):
                    head = s3.head_object(Bucket=stack.bucket, Key=obj["Key"])
                    found.append((obj["Key"], head.get("VersionId") or head["ETag"].strip('"')))
        return found

    def deliver(key, version):
        event = object_created(stack.bucket, key, etag=version, version_id=version)
        return upload(event, LambdaContext())

    return Platform(discover, deliver)


def _actions(stack, signed_in):
    def aws_sign_in(with_, env):
        assert with_ == {"role-to-assume": ROLE, "aws-region": "us-east-1"}
        signed_in.append(with_["role-to-assume"])
        # what configure-aws-credentials exports after AssumeRoleWithWebIdentity (a session of the role,
        # which the CLI reads back with sts get-caller-identity); the endpoint is moto's
        creds = stack.client("sts").assume_role(RoleArn=ROLE, RoleSessionName="GitHubActions")["Credentials"]
        return {
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
            "AWS_ENDPOINT_URL": stack.endpoint,
        }

    def azure_sign_in(with_, env):
        raise AssertionError("the AWS pipeline must not sign in to Azure")

    return {**common_actions(), "aws-actions/configure-aws-credentials": aws_sign_in, "azure/login": azure_sign_in}


def _variables(stack):
    return {
        "MODELPILOT_CLOUD": "aws",
        "MODELPILOT_AWS_ROLE_ARN": ROLE,
        "MODELPILOT_AWS_REGION": "us-east-1",
        "MODELPILOT_REGISTRY_TABLE": stack.registry_table,
        "MODELPILOT_MODEL_BUCKET": stack.bucket,
    }


def test_example_repository_pipeline_on_aws(aws_stack, tmp_path):
    put_policy(aws_stack, (EXAMPLE / "modelpilot.yaml").read_text(encoding="utf-8"))
    repo = workspace(tmp_path)
    signed_in: list[str] = []
    run = runner(tmp_path, repo, _actions(aws_stack, signed_in), _variables(aws_stack))
    with _platform(aws_stack) as platform:
        try:
            results = run.run_caller(repo / ".github" / "workflows" / "release.yml")
        except JobFailed as exc:
            pytest.fail(f"{exc}\n\n{run.transcript()}")
    transcript = run.transcript()
    (tmp_path / "transcript.txt").write_text(transcript, encoding="utf-8")
    if os.environ.get("MODELPILOT_PRINT_PIPELINE"):
        print(transcript)

    jobs = results["modelpilot"]
    assert jobs["release"]["result"] == jobs["promote"]["result"] == "success"
    release = f"{GITHUB['sha'][:12]}-{GITHUB['run_id']}"
    package = f"s3://{aws_stack.bucket}/models/churn/{release}"
    assert jobs["release"]["outputs"] == {"version": "1", "package-uri": package}
    assert signed_in == [ROLE, ROLE]  # both jobs, OIDC only
    ran = [(r.job, r.name) for r in run.records if r.kind == "run" and r.status == "success"]
    assert ran == [
        ("release", "Install ModelPilot"),
        ("release", "Build the model"),
        ("release", "Build the package"),
        ("release", "Check the package against the policy"),
        ("release", "Push the package (manifest last)"),
        ("release", "Wait for registration and the first environment"),
        ("promote", "Install ModelPilot"),
        ("promote", "Record the environment reviewer's approval"),
        ("promote", "Promote"),
        ("promote", "Wait until it is there"),
    ]
    # the upload function registered the pushed package once and promoted it to dev
    [reply] = platform.replies
    assert reply["results"][0]["status"] == "registered"
    registry = get_bus().services.registry
    version = registry.get_version("churn", 1)
    assert version.package_uri == package and version.registered_by == "system:s3-upload"
    assert version.manifest.lineage.code_revision == GITHUB["sha"]
    assert version.manifest.lineage.repository == "https://github.com/acme/churn-model"
    assert version.manifest.lineage.run_url == f"https://github.com/acme/churn-model/actions/runs/{GITHUB['run_id']}"
    assert version.manifest.lineage.built_by == "github:alice"
    assert version.manifest.reference_data_uri == "reference/reference.csv"
    assert registry.get_alias("churn", "dev").version == 1
    assert registry.get_alias("churn", "staging").version == 1
    [approval] = registry.list_approvals("churn", 1, "staging")
    assert approval.approver == f"github:{APPROVER}"
    records = registry.audit_records("churn")
    assert [r.action for r in records] == ["register", "promote", "approve", "promote"]
    assert records[-1].actor == "github:alice" and verify_chain("churn", records).ok
    # each step's report reached the run's summary page
    by_name = {r.name: r for r in run.records}
    check = by_name["Check the package against the policy"]
    assert "threshold:auc" in check.summary and "❌" not in check.summary
    assert (
        "### ModelPilot: `churn` v1 → `dev`: ✅ reached"
        in by_name["Wait for registration and the first environment"].summary
    )
    wait_staging = by_name["Wait until it is there"]
    assert "→ `staging`: ✅ reached" in wait_staging.summary and "approve: passed" not in wait_staging.summary
    assert "| staging | ✅ entered |" in wait_staging.summary and "approvals: passed" in wait_staging.summary
    push = by_name["Push the package (manifest last)"]
    assert push.output.strip().splitlines()[-1].startswith("pushed churn to s3://")
    assert push.outputs["manifest_uri"] == f"{package}/modelpilot.json"

    # a re-run of the same run (attempt 2) builds the same manifest: nothing is sent, nothing changes
    again = runner(tmp_path, repo, _actions(aws_stack, signed_in), _variables(aws_stack), run_attempt="2")
    with _platform(aws_stack) as platform_again:
        again.run_caller(repo / ".github" / "workflows" / "release.yml")
    rebuilt = {r.name: r for r in again.records}
    assert (
        rebuilt["Build the package"].outputs["manifest_digest"]
        == by_name["Build the package"].outputs["manifest_digest"]
    )
    assert "0 uploaded, 0 resumed, 3 already there; 0 B sent" in rebuilt["Push the package (manifest last)"].output
    assert all(
        r["results"][0].get("duplicate") or r["results"][0]["status"] == "unchanged" for r in platform_again.replies
    )
    assert [v.version for v in registry.list_versions("churn")] == [1]
    assert len(registry.alias_history("churn", "staging")) == 1
    assert len(registry.list_approvals("churn", 1, "staging")) == 1


def test_a_package_below_the_threshold_stops_the_pipeline_at_check(aws_stack, tmp_path):
    policy = (EXAMPLE / "modelpilot.yaml").read_text(encoding="utf-8").replace("auc >= 0.70", "auc >= 0.99")
    put_policy(aws_stack, policy)
    repo = workspace(tmp_path)
    run = runner(tmp_path, repo, _actions(aws_stack, []), _variables(aws_stack))
    with pytest.raises(JobFailed) as failed:
        run.run_caller(repo / ".github" / "workflows" / "release.yml")
    assert failed.value.record.name == "Check the package against the policy"
    assert failed.value.code == 3
    assert "[FAIL] threshold:auc" in failed.value.record.output
    assert "❌ failed" in failed.value.record.summary
    listed = aws_stack.client("s3").list_objects_v2(Bucket=aws_stack.bucket, Prefix="models/")
    assert listed.get("KeyCount", 0) == 0  # nothing was pushed
    assert json.loads(json.dumps(get_bus().services.registry.list_models())) == []
