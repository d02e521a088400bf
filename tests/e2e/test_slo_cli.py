"""The SLO and telemetry commands as a user runs them (in-process ``modelpilot.cli.app``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from modelpilot.cli import main
from tests.support.slo import SLO_POLICY, cli_json, make_package, request_lines

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELPILOT_ACTOR", "alice@example.com")
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(SLO_POLICY, encoding="utf-8")
    for seed in (1, 2):
        assert main(["register", str(make_package(tmp_path / f"p{seed}", seed=seed)), "--home", str(home)]) == 0
        for env in ("staging", "prod"):
            assert main(["promote", "churn", "--env", env, "--version", str(seed), "--home", str(home)]) == 0
    return home


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ingest_check_status_and_automatic_rollback(home, tmp_path, capsys):
    now = datetime.now(UTC).replace(microsecond=0)
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(request_lines("churn", "prod", 2, now - timedelta(minutes=61), 60, errors=25)) + "\n")
    code, out, _ = _run(capsys, "telemetry", "ingest", str(path), "--home", str(home))
    assert code == 0 and "120 request line(s)" in out
    code, out, _ = _run(capsys, "slo", "status", "churn", "--home", str(home))
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split()[:6] == ["MODEL", "ENVIRONMENT", "VERSION", "SLO", "OBJECTIVE", "WINDOW"]
    availability = next(r for r in rows if " availability " in r)
    assert "1h=25.00" in availability and "page (1h/5m)" in availability and "99%" in availability
    code, out, _ = _run(capsys, "slo", "status", "--json", "--home", str(home))
    data = cli_json(out)
    assert {(r["slo"], r["state"]) for r in data} == {("availability", "alert"), ("latency", "ok")}
    assert data[0]["burn_rates"]["1h"] == pytest.approx(25.0)
    code, out, _ = _run(capsys, "slo", "check", "--home", str(home))
    assert code == 0 and "rolled back v2 -> v1" in out
    code, out, _ = _run(capsys, "audit", "show", "churn", "--json", "--home", str(home))
    actions = [r["action"] for r in cli_json(out)]
    assert actions[-2:] == ["slo_breach", "rollback"]
    notifications = (home / "notifications.jsonl").read_text().splitlines()
    assert any("ModelRolledBack" in n for n in notifications) and any("SloBurnAlert" in n for n in notifications)


def test_bad_telemetry_file_exits_2_and_writes_nothing(home, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"type": "request"}\n')
    code, _out, err = _run(capsys, "telemetry", "ingest", str(path), "--home", str(home))
    assert code == 2 and "bad.jsonl:1" in err


def test_export_then_import_gives_the_policy_back(home, tmp_path, capsys):
    out_file = tmp_path / "openslo.yaml"
    code, _out, _ = _run(capsys, "slo", "export", "--out", str(out_file), "--home", str(home))
    assert code == 0 and len(list(yaml.safe_load_all(out_file.read_text()))) == 2
    code, out, _ = _run(capsys, "slo", "import", str(out_file), "--home", str(home))
    snippet = yaml.safe_load(out)
    names = [s["name"] for s in snippet["models"]["churn"]["slos"]]
    assert code == 0 and names == ["availability", "latency"]
    original = yaml.safe_load(SLO_POLICY)["models"]["churn"]["slos"][0]
    assert snippet["models"]["churn"]["slos"][0]["sli"]["good"] == original["sli"]["good"]


def test_rules_for_both_formats(tmp_path, capsys):
    policy = str(REPO / "infra" / "prometheus" / "example-policy.yaml")
    code, out, _ = _run(capsys, "slo", "rules", "--format", "prometheus", "--policy", policy, "--home", str(tmp_path))
    assert code == 0 and yaml.safe_load(out)["groups"][0]["name"] == "modelpilot-slo-churn-prod-availability"
    code, out, _ = _run(
        capsys, "slo", "rules", "--format", "cloudwatch", "--json", "--policy", policy, "--home", str(tmp_path)
    )
    assert code == 0 and cli_json(out)["AWSTemplateFormatVersion"] == "2010-09-09"
    code, _out, err = _run(capsys, "slo", "rules", "--format", "cloudwatch", "--home", str(tmp_path))
    assert code == 2 and "no SLO reads CloudWatch" in err


def test_unknown_model_and_bad_openslo(home, tmp_path, capsys):
    assert _run(capsys, "slo", "status", "nope", "--home", str(home))[0] == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {}\n")
    code, _out, err = _run(capsys, "slo", "import", str(bad), "--home", str(home))
    assert code == 2 and "SLO 'x'" in err
