"""The local outbox under a crash: a process killed between the commit and the publish loses no event.

A child process runs ``modelpilot register --promote`` with the event log's publish replaced by
``SIGKILL`` of itself, so the registration and the promotion commit (one SQLite transaction each)
and the process dies before anything reaches ``events.jsonl``. Before the outbox both events were
lost for good (a retry is a no-op on the manifest digest); now ``modelpilot outbox relay``, or the
next command on the model, publishes each exactly once, under the id ``<model>#<seq>``.

What this cannot show: a kill inside the SQLite commit itself (SQLite's own atomicity covers it)
or a kill in the middle of writing one JSONL line.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelpilot.cli import main

POLICY = "environments: [dev, staging, prod]\n"

KILLED_AFTER_COMMIT = """
import os, signal, sys
from modelpilot.adapters.local import events

def die(self, published, *, traceparent=None):
    os.kill(os.getpid(), signal.SIGKILL)

events.JsonlEventLog.publish = die
from modelpilot.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    return home


def killed_register(home: Path, package: Path) -> None:
    args = ["register", str(package), "--promote", "--actor", "alice", "--home", str(home)]
    done = subprocess.run([sys.executable, "-c", KILLED_AFTER_COMMIT, *args], capture_output=True, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def published(home: Path) -> list[tuple[str, str]]:
    path = home / "events.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [(line["type"], line.get("id", "")) for line in lines]


def test_a_kill_between_commit_and_publish_is_repaired_by_outbox_relay_once(home, make_package, capsys):
    killed_register(home, make_package())
    assert published(home) == []  # committed, never published
    assert main(["status", "--home", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["version"] == 1  # the registration and the promotion held

    assert main(["outbox", "relay", "--home", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"published": {"churn": 2}, "total": 2}
    assert published(home) == [("ModelRegistered", "churn#1"), ("ModelPromoted", "churn#2")]

    assert main(["outbox", "relay", "--home", str(home)]) == 0  # idempotent: nothing the second time
    assert "nothing left to publish" in capsys.readouterr().out
    assert published(home) == [("ModelRegistered", "churn#1"), ("ModelPromoted", "churn#2")]


def test_a_kill_between_commit_and_publish_is_repaired_by_the_next_command(home, make_package, capsys):
    package = make_package()
    killed_register(home, package)
    # the upload's retry (the same package again) is a no-op on the registry, and now publishes what was left
    assert main(["register", str(package), "--promote", "--actor", "alice", "--home", str(home)]) == 0
    assert published(home) == [("ModelRegistered", "churn#1"), ("ModelPromoted", "churn#2")]
    assert main(["promote", "churn", "--env", "staging", "--actor", "alice", "--home", str(home)]) == 0
    assert published(home) == [
        ("ModelRegistered", "churn#1"),
        ("ModelPromoted", "churn#2"),
        ("ModelPromoted", "churn#3"),
    ]
    capsys.readouterr()


def test_kills_at_every_command_lose_nothing_and_double_nothing(home, make_package, capsys):
    """Three uploads, each killed after its commit, then one relay: every event once, in chain order."""
    for auc in (0.8, 0.85, 0.9):
        killed_register(home, make_package(auc=auc))
    assert published(home) == []
    assert main(["outbox", "relay", "churn", "--home", str(home)]) == 0
    ids = [i for _, i in published(home)]
    assert ids == [f"churn#{n}" for n in range(1, 7)]
    assert len(set(ids)) == len(ids)
    capsys.readouterr()
