"""``modelpilot canary …`` as an operator runs it: status, actions, exit codes, and two operators racing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modelpilot.cli import main

POLICY = """
environments: [dev, prod]
roles:
  - {role: promoter, members: ["alice", "carol", "dave"]}
  - {role: viewer, members: ["*"]}
defaults:
  environments:
    prod:
      canary:
        steps: [5, 50, 100]
        interval: 10m
        min_samples: 100
        analysis:
          - {name: error-ratio, threshold: 0.01}
"""


@pytest.fixture
def home(tmp_path, make_package, capsys, monkeypatch):
    """v1 in prod, v2's canary started there (revision 1); carol operates unless told otherwise."""
    monkeypatch.setenv("MODELPILOT_ACTOR", "carol")
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    for number, auc in ((1, 0.85), (2, 0.9)):
        assert main(["register", str(make_package(auc=auc)), "--promote", "--actor", "alice", "--home", str(home)]) == 0
        if number == 1:
            promote = ["promote", "churn", "--env", "prod", "--version", "1", "--actor", "alice", "--home", str(home)]
            assert main(promote) == 0
    capsys.readouterr()
    code = main(
        ["promote", "churn", "--env", "prod", "--version", "2", "--actor", "alice", "--json", "--home", str(home)]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["status"] == "canary_started"
    return home


def run(home, *args, capsys):
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_shows_the_split_and_the_tick_finds_nothing_due(home, capsys):
    code, out, _ = run(home, "canary", "status", "churn", "--env", "prod", "--json", capsys=capsys)
    assert code == 0
    (row,) = json.loads(out)
    assert (row["state"], row["revision"], row["split"], row["steps"]) == (
        "running",
        1,
        {"1": 95, "2": 5},
        [5, 50, 100],
    )
    assert row["next_analysis_at"] > row["step_started_at"]
    code, out, _ = run(home, "canary", "status", "churn", capsys=capsys)
    assert code == 0 and "v1=95% v2=5%" in out and "1/3" in out
    code, out, _ = run(home, "canary", "tick", "--json", capsys=capsys)
    assert code == 0 and json.loads(out)["status"] == "unchanged"
    manifest = json.loads((home / "data" / "serving" / "churn" / "prod.json").read_text())
    assert manifest["weights"] == {"1": 95, "2": 5}


def test_actions_and_their_exit_codes(home, capsys):
    code, out, _ = run(home, "canary", "pause", "churn", "--env", "prod", "--expected-revision", "1", capsys=capsys)
    assert code == 0 and "paused" in out
    code, _, err = run(home, "canary", "abort", "churn", "--env", "prod", "--expected-revision", "1", capsys=capsys)
    assert code == 6 and "revision 2, not 1" in err
    code, _, err = run(home, "canary", "resume", "churn", "--env", "prod", "--actor", "mallory", capsys=capsys)
    assert code == 5 and "mallory" in err
    code, out, _ = run(home, "canary", "resume", "churn", "--env", "prod", "--json", "--actor", "carol", capsys=capsys)
    assert code == 0 and json.loads(out)["canary"]["revision"] == 3
    code, _, err = run(home, "canary", "status", "churn", "--env", "dev", capsys=capsys)
    assert code == 4 and "no canary" in err
    code, _, err = run(home, "canary", "pause", "nope", "--env", "prod", capsys=capsys)
    assert code == 4
    code, out, _ = run(home, "canary", "promote", "churn", "--env", "prod", "--reason", "looks fine", capsys=capsys)
    assert code == 0 and "promoted to prod" in out
    code, out, _ = run(home, "status", "churn", "--json", capsys=capsys)
    assert {r["environment"]: r["version"] for r in json.loads(out)} == {"dev": 2, "prod": 2}
    code, _, err = run(home, "canary", "pause", "churn", "--env", "prod", capsys=capsys)
    assert code == 6 and "already ended" in err


def test_two_operators_racing_on_one_canary_exactly_one_wins(home):
    env = {**os.environ, "MODELPILOT_ACTOR": "dave"}
    tail = ["churn", "--env", "prod", "--expected-revision", "1", "--home", str(home)]
    commands = [[sys.executable, "-m", "modelpilot.cli", "canary", action, *tail] for action in ("abort", "pause")]
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes == [0, 6], results
    loser = next(err for code, err in results if code == 6)
    assert "changed since you looked" in loser


def test_modelpilot_status_shows_the_active_canary_in_text_and_json(home, capsys):
    code, out, _ = run(home, "status", "churn", "--json", capsys=capsys)
    assert code == 0
    rows = {r["environment"]: r for r in json.loads(out)}
    assert rows["dev"]["canary"] is None
    assert rows["prod"]["version"] == 1
    assert rows["prod"]["canary"] == {
        "candidate_version": 2,
        "stable_version": 1,
        "weight": 5,
        "step": 0,
        "state": "running",
        "revision": 1,
    }
    code, out, _ = run(home, "status", "churn", capsys=capsys)
    assert code == 0
    header, *lines = out.splitlines()
    assert "CANARY" in header
    prod = next(line for line in lines if " prod " in f" {line} ")
    assert prod.rstrip().endswith("v2 5% running")
    run(home, "canary", "pause", "churn", "--env", "prod", capsys=capsys)
    code, out, _ = run(home, "status", "churn", capsys=capsys)
    assert "v2 5% paused" in out
    run(home, "canary", "abort", "churn", "--env", "prod", capsys=capsys)
    code, out, _ = run(home, "status", "churn", "--json", capsys=capsys)
    assert {r["environment"]: r["canary"] for r in json.loads(out)} == {"dev": None, "prod": None}
