"""The CLI on hostile or awkward input: one line on stderr, the documented exit code, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from modelpilot.cli import main

BAD_POLICY = "defaults:\n  environments:\n    staging:\n      soak: [1h]\n"


def run(*args, capsys):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize("window", ["5000000w", "3000w", "0s"])
def test_drift_windows_outside_the_range_are_refused_with_the_range(tmp_path, capsys, window):
    code, _, err = run("drift", "run", "--window", window, "--home", str(tmp_path), capsys=capsys)
    assert code == 2 and "between 1m and 366d" in err


def test_a_version_beyond_64_bits_is_invalid_input_not_an_sqlite_overflow(tmp_path, capsys, make_package):
    home = str(tmp_path / "home")
    assert main(["register", str(make_package()), "--home", home]) == 0
    for argv in (
        ["promote", "churn", "--env", "dev", "--version", str(2**63)],
        ["approve", "churn", str(2**64), "--env", "prod", "--actor", "bob"],
        ["rollback", "churn", "--env", "dev", "--reason", "x", "--to", str(2**70)],
    ):
        capsys.readouterr()
        code, _, err = run(*argv, "--home", home, capsys=capsys)
        assert code == 2 and "2**53" in err, err


def test_a_home_that_is_a_file_is_invalid_input_for_every_command(tmp_path, capsys):
    home = tmp_path / "file"
    home.write_text("not a folder")
    for argv in (["status"], ["audit", "verify"], ["demo"], ["drift", "run", "--window", "1h"]):
        code, _, err = run(*argv, "--home", str(home), capsys=capsys)
        assert code == 2 and "not a folder" in err, argv


def test_a_malformed_connection_string_is_invalid_input_and_is_not_echoed(monkeypatch, capsys):
    monkeypatch.setenv("MP_TEST_CONN", "AccountKey=secret-value-42;garbage")
    code, _, err = run("status", "--backend", "azure", "--azure-connection-setting", "MP_TEST_CONN", capsys=capsys)
    assert code == 2 and "MP_TEST_CONN" in err and "connection string" in err
    assert "secret-value-42" not in err


def test_a_bad_policy_in_the_home_names_file_and_line_and_spares_commands_that_do_not_need_it(tmp_path, capsys):
    (tmp_path / "modelpilot.yaml").write_text(BAD_POLICY)
    code, _, err = run("status", "--home", str(tmp_path), capsys=capsys)
    assert code == 2 and "modelpilot.yaml" in err and "(line 4)" in err and "soak" in err
    code, out, _ = run("audit", "verify", "--home", str(tmp_path), capsys=capsys)
    assert code == 0 and "verified" in out
    code, out, _ = run("manifest", "schema", "--home", str(tmp_path), capsys=capsys)
    assert code == 0 and out.startswith("{")


@pytest.mark.parametrize("argv", [["manifest", "schema"], ["policy", "schema"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(argv):
    """``modelpilot manifest schema | head -1``: stdout is a pipe whose reader has already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "modelpilot.cli", *argv], stdout=write, stderr=subprocess.PIPE, check=False
        )
    finally:
        os.close(write)
    assert done.stderr.decode() == ""
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell reports a pipeline member that lost its reader


def test_wait_with_a_version_beyond_64_bits_is_invalid_input(tmp_path, capsys, make_package):
    home = str(tmp_path / "home")
    assert main(["register", str(make_package()), "--home", home]) == 0
    capsys.readouterr()
    code, _, err = run(
        "wait", "churn", "--version", str(2**64), "--env", "dev", "--timeout", "1s", "--home", home, capsys=capsys
    )
    assert code == 2 and "2**53" in err


def test_the_sqlite_registry_answers_a_number_it_cannot_hold_with_invalid_input(tmp_path):
    from modelpilot.adapters.local.registry import SqliteRegistry
    from modelpilot.exceptions import InvalidInput

    registry = SqliteRegistry(tmp_path / "registry.db")
    with pytest.raises(InvalidInput, match="2\\*\\*63"):
        registry.get_version("churn", 2**63)
