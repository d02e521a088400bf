"""The CLI as a user runs it: exit codes, --json, --help, errors without tracebacks, audit tampering."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from modelpilot.cli import main

POLICY = """
environments: [dev, staging, prod]
defaults:
  environments:
    staging:
      thresholds: ["auc >= 0.80"]
    prod:
      approvals: 1
"""


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    return home


def run(home, *args, capsys):
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def test_lifecycle_exit_codes_and_json(home, make_package, capsys):
    code, out, _ = run(
        home, "register", str(make_package(auc=0.85)), "--promote", "--actor", "alice", "--json", capsys=capsys
    )
    assert code == 0
    data = json.loads(out)
    assert data["status"] == "registered" and data["version"] == 1 and data["promotion"]["status"] == "promoted"

    code, out, _ = run(home, "promote", "churn", "--env", "staging", "--actor", "alice", capsys=capsys)
    assert code == 0 and "promoted to staging" in out

    code, out, _ = run(home, "promote", "churn", "--env", "prod", "--actor", "alice", capsys=capsys)
    assert code == 3 and "FAIL" in out and "approvals" in out

    code, _, err = run(home, "approve", "churn", "1", "--env", "prod", "--actor", "alice", capsys=capsys)
    assert code == 5 and "four-eyes" in err and "Traceback" not in err

    assert run(home, "approve", "churn", "1", "--env", "prod", "--actor", "bob", capsys=capsys)[0] == 0
    assert run(home, "promote", "churn", "--env", "prod", "--actor", "alice", capsys=capsys)[0] == 0

    code, out, _ = run(home, "status", "--json", capsys=capsys)
    rows = json.loads(out)
    assert {(r["environment"], r["version"]) for r in rows} == {("dev", 1), ("staging", 1), ("prod", 1)}

    code, out, _ = run(home, "history", "churn", "--env", "prod", "--json", capsys=capsys)
    assert [h["to_version"] for h in json.loads(out)] == [1]

    code, out, _ = run(
        home, "history", "churn", "--env", "prod", "--at", "2000-01-01T00:00:00Z", "--json", capsys=capsys
    )
    assert json.loads(out)["version"] is None

    code, out, _ = run(home, "rollback", "churn", "--env", "prod", "--reason", "test", capsys=capsys)
    assert code == 0 and "no earlier healthy version" in out

    code, out, _ = run(home, "audit", "verify", capsys=capsys)
    assert code == 0 and "every record intact" in out


def test_errors_have_codes_and_no_traceback(home, make_package, capsys):
    code, _, err = run(home, "promote", "nope", "--env", "dev", capsys=capsys)
    assert code == 4 and err.startswith("modelpilot: error: unknown model")
    pkg = make_package()
    (pkg / "model.bin").write_bytes(b"changed")
    code, _, err = run(home, "register", str(pkg), "--json", capsys=capsys)
    assert code == 2
    error = json.loads(err)
    assert error["error"] == "size_mismatch" and error["file"] == "model.bin"
    code, _, err = run(home, "history", "churn", "--env", "qa", capsys=capsys)
    assert code == 2 and "unknown environment" in err
    code, _, err = run(home, "audit", "verify", "ghost", capsys=capsys)
    assert code == 4


def test_policy_and_manifest_commands(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(POLICY)
    assert main(["policy", "validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: {environments: {staging: {thresholds: ['auc >> 1']}}}")
    assert main(["policy", "validate", str(bad)]) == 2
    assert "invalid policy at defaults.environments.staging.thresholds.0" in capsys.readouterr().err
    assert main(["policy", "schema"]) == 0
    assert "properties" in json.loads(capsys.readouterr().out)
    assert main(["manifest", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "artifacts" in schema["required"]


def test_audit_verify_catches_a_record_altered_in_the_sqlite_file(home, make_package, capsys):
    run(home, "register", str(make_package(auc=0.85)), "--promote", "--actor", "alice", capsys=capsys)
    run(home, "promote", "churn", "--env", "staging", "--actor", "alice", capsys=capsys)
    conn = sqlite3.connect(home / "registry.db")
    conn.execute("UPDATE audit SET actor='mallory' WHERE model='churn' AND seq=2")
    conn.commit()
    conn.close()
    code, out, _ = run(home, "audit", "verify", "--json", capsys=capsys)
    data = json.loads(out)
    assert code == 7 and data["ok"] is False
    assert data["models"][0]["first_bad_seq"] == 2 and "altered" in data["models"][0]["problem"]


def test_audit_verify_catches_a_deleted_record(home, make_package, capsys):
    run(home, "register", str(make_package(auc=0.85)), "--promote", "--actor", "alice", capsys=capsys)
    run(home, "promote", "churn", "--env", "staging", "--actor", "alice", capsys=capsys)
    conn = sqlite3.connect(home / "registry.db")
    conn.execute("DELETE FROM audit WHERE model='churn' AND seq=2")
    conn.commit()
    conn.close()
    code, out, _ = run(home, "audit", "verify", capsys=capsys)
    assert code == 7 and "churn#3" in out


ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, env=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def test_help_on_every_command_has_an_example():
    for command in (
        ["register"],
        ["promote"],
        ["approve"],
        ["reject"],
        ["rollback"],
        ["status"],
        ["history"],
        ["audit", "verify"],
        ["policy", "validate"],
        ["manifest", "schema"],
        ["demo"],
        ["canary", "status"],
        ["canary", "abort"],
        ["canary", "tick"],
    ):
        result = _cli(*command, "--help")
        assert result.returncode == 0, command
        assert "example:" in result.stdout and "modelpilot" in result.stdout


def test_demo_tells_the_story_and_leaves_state_in_home(tmp_path):
    home = tmp_path / "demo-home"
    result = _cli("demo", env={"MODELPILOT_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "churn v1 promoted to prod" in out
    assert "churn v2 promoted to prod" in out
    assert "promotion of churn v3 to staging blocked" in out and "needs >=" in out
    assert "rolled back v2 -> v1" in out
    assert "audit verify: PASSED" in out
    assert "churn v4 canary started in prod: 10%" in out and "canary advanced to 50%" in out
    assert "error-ratio: candidate v4 8.00% vs stable v1 0.00%" in out and "FAIL" in out
    canary = _cli("canary", "status", "churn", "--env", "prod", "--json", "--home", str(home))
    assert canary.returncode == 0, canary.stderr
    (row,) = json.loads(canary.stdout)
    assert (row["state"], row["candidate_version"], row["split"]) == ("aborted", 4, {"1": 100})
    status = _cli("status", "--json", "--home", str(home))
    assert status.returncode == 0
    prod = [r for r in json.loads(status.stdout) if r["environment"] == "prod"][0]
    assert prod["version"] is not None
    verify = _cli("audit", "verify", "--home", str(home))
    assert verify.returncode == 0


def test_demo_throwaway_home_leaves_nothing_behind(tmp_path):
    result = _cli("demo", "--json", cwd=tmp_path, env={"MODELPILOT_HOME": ""})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["home"] is None
    assert list(tmp_path.iterdir()) == []


VIEWER_POLICY = """
environments: [dev, prod]
roles:
  - {role: admin, members: ["alice"]}
  - {role: viewer, members: ["vera"]}
"""


def test_reads_need_the_view_role_when_the_policy_declares_roles(home, make_package, capsys, tmp_path):
    (home / "modelpilot.yaml").write_text(VIEWER_POLICY)
    assert run(home, "register", str(make_package(auc=0.85)), "--promote", "--actor", "alice", capsys=capsys)[0] == 0
    reads = [
        ["status"],
        ["status", "churn"],
        ["history", "churn", "--env", "dev"],
        ["history", "churn", "--env", "dev", "--at", "2000-01-01T00:00:00Z"],
        ["audit", "show", "churn"],
        ["quality", "status", "--model", "churn"],
        ["slo", "status", "churn"],
        ["canary", "status", "churn"],
    ]
    for args in reads:
        code, out, err = run(home, *args, "--actor", "vera", "--json", capsys=capsys)
        assert code == 0, (args, err)
    for args in [*reads[1:], ["incident", "churn", "--env", "dev", "--out", str(tmp_path / "incident")]]:
        code, _, err = run(home, *args, "--actor", "mallory", capsys=capsys)
        assert code == 5 and "mallory may not view churn" in err and "Traceback" not in err, args
    for args in (["status"], ["quality", "status"], ["slo", "status"]):  # fleet-wide: names no model
        code, _, err = run(home, *args, "--actor", "mallory", capsys=capsys)
        assert code == 5 and "may not view any model" in err, args
    assert not (tmp_path / "incident").exists()
    code, out, _ = run(home, "audit", "show", "churn", "--actor", "vera", "--json", capsys=capsys)
    denied = [(r["actor"], r["evidence"]["attempted"]) for r in json.loads(out) if r["action"] == "deny"]
    assert denied == [("mallory", "view")] * 8
    assert run(home, "audit", "verify", capsys=capsys)[0] == 0


def test_reads_are_open_without_roles(home, make_package, capsys):
    assert run(home, "register", str(make_package(auc=0.85)), "--promote", "--actor", "alice", capsys=capsys)[0] == 0
    for args in (["status", "churn"], ["history", "churn", "--env", "dev"], ["audit", "show", "churn"]):
        assert run(home, *args, "--actor", "mallory", capsys=capsys)[0] == 0, args
