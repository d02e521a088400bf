"""`modelpilot --backend azure` against Azurite: the operator's commands on the Azure registry."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelpilot.cli import main
from tests.support.azure_functions import AzureApp


@pytest.fixture(autouse=True)
def cli_stdout_only(monkeypatch):
    """A test run earlier in this process may have put the Lambda logger (JSON lines on stdout) on the
    ``modelpilot`` logger; a CLI process never has it, so stdout holds only the command's output."""
    monkeypatch.setattr(logging.getLogger("modelpilot"), "handlers", [])


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path)
    yield app
    app.close()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_runs_the_lifecycle_on_azure_storage(app, capsys, monkeypatch):
    setting = os.environ["MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING"]
    monkeypatch.delenv("MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING")  # the flag names it instead
    monkeypatch.delenv("MODELPILOT_BACKEND")
    azure = ["--backend", "azure", "--azure-connection-setting", setting]
    app.upload_package("churn/v1")
    code, out, _ = run(capsys, "register", f"az://{app.container}/churn/v1", "--promote", "--actor", "alice", *azure)
    assert code == 0 and "churn v1 registered" in out and "promoted to dev" in out
    code, out, _ = run(capsys, "promote", "churn", "--env", "staging", "--actor", "alice", "--json", *azure)
    assert code == 0 and json.loads(out)["status"] == "promoted"
    code, out, _ = run(capsys, "promote", "churn", "--env", "prod", "--actor", "alice", *azure)
    assert code == 3 and "approval" in out
    code, out, _ = run(capsys, "status", "churn", "--json", *azure)
    rows = {r["environment"]: r["version"] for r in json.loads(out)}
    assert (code, rows) == (0, {"dev": 1, "staging": 1, "prod": None})
    code, out, _ = run(capsys, "history", "churn", "--env", "staging", "--json", *azure)
    # a storage key proves no person: the name given with --actor is recorded as claimed
    assert code == 0 and [h["actor"] for h in json.loads(out)] == ["claimed:alice"]
    code, out, _ = run(capsys, "audit", "verify", *azure)
    assert code == 0 and "every record intact" in out


def test_cli_errors_name_the_missing_setting(app, capsys, monkeypatch):
    monkeypatch.setenv("MODELPILOT_NOT_SET_HERE", "")
    code, _, err = run(capsys, "status", "--backend", "azure", "--azure-connection-setting", "MODELPILOT_NOT_SET_HERE")
    assert code == 2 and "MODELPILOT_NOT_SET_HERE" in err


def test_cli_binary_reads_azure_app_settings_from_the_environment(app):
    app.upload_package("churn/v1")
    binary = Path(sys.executable).with_name("modelpilot")
    done = subprocess.run(
        [str(binary), "register", f"az://{app.container}/churn/v1", "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    assert [v.version for v in app.registry.list_versions("churn")] == [1]
