"""The example model repository run as a GitHub Actions workflow against the emulators.

Shared by the AWS (moto) and Azure (Azurite) pipeline tests: a workspace holding a
copy of ``examples/churn-model`` (the checked-out repository), a runner with the
environment a hosted runner sets, a fake ``gh`` that answers the environment-approval
query, and a background "platform" that delivers each uploaded manifest to the
upload function as the cloud's event would (EventBridge rule / Event Grid subscription).
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.github_runner import Runner

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "churn-model"
TEMPLATES = REPO / "templates" / "ci"
VENV_BIN = str(Path(sys.executable).parent)
APPROVER = "carol"

GITHUB = {
    "workflow": "release churn",
    "run_id": "7301452918",
    "run_number": "42",
    "run_attempt": "1",
    "actor": "alice",
    "triggering_actor": "alice",
    "repository": "acme/churn-model",
    "repository_owner": "acme",
    "event_name": "push",
    "sha": "3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f7a8b9c0d",
    "ref": "refs/heads/main",
    "ref_name": "main",
    "server_url": "https://github.com",
    "api_url": "https://api.github.com",
    "graphql_url": "https://api.github.com/graphql",
    "token": "ghs_placeholder_for_tests",
}

#: the review history GitHub returns for the run (GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals)
APPROVALS = [
    {
        "environments": [
            {
                "id": 161088068,
                "name": "staging",
                "url": "https://api.github.com/repos/acme/churn-model/environments/staging",
            }
        ],
        "state": "approved",
        "comment": "metrics reviewed",
        "user": {"login": APPROVER, "id": 1, "type": "User"},
    }
]

#: the GitHub CLI as far as the workflow uses it: the approvals of this run, from a file beside it
FAKE_GH = """#!/usr/bin/env python3
import pathlib, sys
args = sys.argv[1:]
if len(args) == 2 and args[0] == "api" and args[1] == "repos/{repository}/actions/runs/{run_id}/approvals":
    print((pathlib.Path(__file__).parent / "approvals.json").read_text())
    sys.exit(0)
print("gh: unexpected call: " + " ".join(args), file=sys.stderr)
sys.exit(1)
"""


def workspace(tmp_path: Path) -> Path:
    """Copy the example repository where the runner checks it out; return the workspace."""
    target = tmp_path / "work" / "churn-model" / "churn-model"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    return target


def runner(tmp_path: Path, repo: Path, actions: dict[str, Any], variables: dict[str, str], **github: str) -> Runner:
    """Return a runner for ``repo`` with a fake ``gh`` on PATH."""
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    details = {**GITHUB, **github}
    gh = fake_bin / "gh"
    gh.write_text(FAKE_GH.format(repository=details["repository"], run_id=details["run_id"]), encoding="utf-8")
    gh.chmod(0o755)
    (fake_bin / "approvals.json").write_text(json.dumps(APPROVALS), encoding="utf-8")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    temp = tmp_path / f"runner-temp-{details['run_attempt']}"
    temp.mkdir(exist_ok=True)
    (temp / "event.json").write_text(json.dumps({"ref": details["ref"], "after": details["sha"]}), encoding="utf-8")
    base_env = {
        "HOME": str(home),
        "PATH": f"{fake_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        # the runner reaches no package index here: ModelPilot and its extras are already installed
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    return Runner(repo, temp, details, base_env, actions, variables)


def common_actions() -> dict[str, Any]:
    """Handlers of the actions every job uses (the repository is already checked out)."""
    return {
        "actions/checkout": lambda with_, env: {},
        "actions/setup-python": lambda with_, env: {"PATH": VENV_BIN},
    }


class Platform:
    """Delivers each new manifest to the upload function in the background, like the cloud's event route."""

    def __init__(
        self, discover: Callable[[], list[tuple[str, str]]], deliver: Callable[[str, str], Any], *, delay: float = 1.5
    ) -> None:
        self.discover = discover
        self.deliver = deliver
        #: how long after the upload the event arrives (the event route's latency)
        self.delay = delay
        self.first_seen: dict[tuple[str, str], float] = {}
        self.seen: set[tuple[str, str]] = set()
        self.replies: list[Any] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="upload-events", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                now = time.monotonic()
                for item in self.discover():
                    if now - self.first_seen.setdefault(item, now) < self.delay:
                        continue
                    if item not in self.seen:
                        self.seen.add(item)
                        self.replies.append(self.deliver(*item))
            except BaseException as exc:  # surfaced by stop()
                self.errors.append(exc)
                return

    def __enter__(self) -> Platform:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if self.errors:
            raise self.errors[0]
