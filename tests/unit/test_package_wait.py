"""``modelpilot wait`` on the local backend: each verdict, its exit code, and what it hands to the CI system."""

from __future__ import annotations

import threading

import pytest

from modelpilot.cli.app import main
from modelpilot.package.manifest import manifest_digest, parse_manifest

POLICY = (
    "environments: [dev, staging]\n"
    "defaults:\n  environments:\n"
    "    dev: {thresholds: ['auc >= 0.8']}\n"
    "    staging: {approvals: 1}\n"
)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith(("GITHUB_", "MODELPILOT_", "BUILD_", "SYSTEM_", "AGENT_", "CI_", "GITLAB_")) or name in {
            "TF_BUILD",
            "CI",
        }:
            monkeypatch.delenv(name, raising=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    common = ["--home", str(tmp_path / "home"), "--policy", str(policy), "--actor", "user:ops"]

    def run(*args: str) -> int:
        return main([*args, *common])

    return run


def _package(make_package, auc=0.9):
    root = make_package("churn", auc=auc)
    return root, manifest_digest(parse_manifest((root / "modelpilot.json").read_bytes()))


def test_reached_writes_the_version_and_a_summary_for_github(cli, make_package, tmp_path, monkeypatch, capsys):
    root, digest = _package(make_package)
    assert cli("register", str(root), "--promote") == 0
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    capsys.readouterr()
    assert cli("wait", "churn", "--package", str(root), "--timeout", "5s") == 0
    assert "churn v1 is in dev (revision 1)" in capsys.readouterr().out
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert outputs["version"] == "1" and outputs["manifest_digest"] == digest and outputs["verdict"] == "reached"
    text = summary.read_text()
    assert "### ModelPilot: `churn` v1 → `dev`: ✅ reached" in text
    assert "| dev | ✅ entered |" in text and "threshold:auc: passed" in text
    assert cli("wait", "churn", "--version", f"sha256:{digest}", "--env", "dev", "--timeout", "1s") == 0


def test_a_registration_that_comes_later_is_waited_for(cli, make_package, capsys):
    root, digest = _package(make_package)
    timer = threading.Timer(2.0, lambda: cli("register", str(root), "--promote"))
    timer.start()
    try:
        code = cli("wait", "churn", "--version", digest, "--timeout", "20s", "--interval", "0.2s")
    finally:
        timer.join()
    out = capsys.readouterr().out
    assert code == 0
    assert out.index("is not registered yet") < out.index("churn v1 is in dev")


def test_a_threshold_failure_in_the_first_environment_is_blocked_at_once(cli, make_package, capsys):
    root, _ = _package(make_package, auc=0.5)
    cli("register", str(root), "--promote")  # registered; its promotion to dev is blocked
    capsys.readouterr()
    assert cli("wait", "churn", "--version", "1", "--timeout", "30s") == 3
    out = capsys.readouterr().out
    assert "cannot enter dev" in out and "[FAIL] threshold:auc: auc=0.5 does not meet auc >= 0.8" in out


def test_a_missing_approval_is_waited_for_until_the_timeout(cli, make_package, tmp_path, monkeypatch, capsys):
    root, _ = _package(make_package)
    assert cli("register", str(root), "--promote") == 0
    monkeypatch.setenv("MODELPILOT_DOTENV", str(tmp_path / "modelpilot.env"))
    capsys.readouterr()
    assert cli("wait", "churn", "--version", "1", "--env", "staging", "--timeout", "1s", "--interval", "0.3s") == 8
    out = capsys.readouterr().out
    assert "waiting for approvals" in out and "timed out after 1s" in out and "[FAIL] approvals: 0 of 1" in out
    assert "MODELPILOT_VERDICT=timeout" in (tmp_path / "modelpilot.env").read_text()


def test_a_rolled_back_release_exits_9(cli, make_package, capsys):
    for auc in (0.9, 0.95):
        root, _ = _package(make_package, auc=auc)
        assert cli("register", str(root), "--promote") == 0
    assert cli("rollback", "churn", "--env", "dev", "--reason", "error spike") == 0
    capsys.readouterr()
    assert cli("wait", "churn", "--version", "2", "--env", "dev", "--timeout", "1s") == 9
    assert "was rolled back to v1" in capsys.readouterr().out
    assert cli("wait", "churn", "--version", "1", "--env", "dev", "--timeout", "1s") == 0


def test_azure_pipelines_gets_output_variables_and_an_attached_summary(
    cli, make_package, tmp_path, monkeypatch, capsys
):
    root, _ = _package(make_package)
    assert cli("register", str(root), "--promote") == 0
    monkeypatch.setenv("TF_BUILD", "True")
    monkeypatch.setenv("AGENT_TEMPDIRECTORY", str(tmp_path))
    capsys.readouterr()
    assert cli("wait", "churn", "--version", "1", "--timeout", "1s") == 0
    out = capsys.readouterr().out
    assert "##vso[task.setvariable variable=version;isoutput=true]1" in out
    summary = tmp_path / "modelpilot-wait-1.md"
    assert f"##vso[task.uploadsummary]{summary}" in out and "✅ reached" in summary.read_text()


@pytest.mark.parametrize(
    "args",
    [
        ("wait", "churn", "--timeout", "1s"),  # neither --version nor --package
        ("wait", "churn", "--version", "1", "--package", "x", "--timeout", "1s"),
        ("wait", "churn", "--version", "latest", "--timeout", "1s"),
        ("wait", "churn", "--version", "1", "--timeout", "soon"),
        ("wait", "churn", "--version", "1", "--env", "qa", "--timeout", "1s"),
    ],
)
def test_bad_arguments_exit_2(cli, args):
    assert cli(*args) == 2


def test_a_package_of_another_model_is_refused(cli, make_package):
    root = make_package("fraud")
    assert cli("wait", "churn", "--package", str(root), "--timeout", "1s") == 2
