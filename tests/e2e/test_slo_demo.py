"""The demo's SLO story: healthy prod, v4 released through the gates, an error burst, an automatic rollback."""

from __future__ import annotations

from modelpilot.cli import main
from tests.support.slo import cli_json


def test_demo_pages_and_rolls_v4_back_to_v1(tmp_path, capsys):
    home = tmp_path / "demo-home"
    assert main(["demo", "--json", "--home", str(home)]) == 0
    timeline = cli_json(capsys.readouterr().out)["timeline"]
    events = [t["event"] for t in timeline]
    assert any("churn v4 promoted to prod" in e for e in events)
    page = next(i for i, e in enumerate(events) if e.startswith("SLO availability on churn prod page"))
    rollback = next(i for i, e in enumerate(events) if e.startswith("automatic rollback"))
    assert page < rollback and "rolled back v4 -> v1" in events[rollback]
    assert main(["audit", "show", "churn", "--json", "--home", str(home)]) == 0
    records = cli_json(capsys.readouterr().out)
    auto = [r for r in records if r["action"] == "rollback" and r["actor"] == "system:slo"]
    assert len(auto) == 1 and auto[0]["from_version"] == 4 and auto[0]["to_version"] == 1
    assert auto[0]["evidence"]["alert"]["severity"] == "page"
    assert [r["to_version"] for r in records if r["action"] == "slo_breach"] == [4]
    assert main(["slo", "status", "churn", "--json", "--home", str(home)]) == 0
    rows = cli_json(capsys.readouterr().out)
    assert {r["slo"] for r in rows} == {"availability", "latency"} and {r["version"] for r in rows} == {1}


def test_demo_canary_advances_twice_then_aborts_on_the_error_ratio(tmp_path, capsys):
    home = tmp_path / "demo-home"
    assert main(["demo", "--json", "--home", str(home)]) == 0
    timeline = cli_json(capsys.readouterr().out)["timeline"]
    events = [t["event"] for t in timeline]
    started = next(i for i, e in enumerate(events) if "churn v4 canary started in prod: 10%" in e)
    ticks = [t for t in timeline[started:] if t["event"].startswith("canary tick")]
    assert [t["status"] for t in ticks] == ["advanced", "advanced", "aborted"]
    assert "at 50%" in ticks[-1]["event"] and "error-ratio: candidate 0.0800 - stable 0.0000" in ticks[-1]["event"]
    assert main(["audit", "show", "churn", "--json", "--home", str(home)]) == 0
    records = cli_json(capsys.readouterr().out)
    canary = [r["action"] for r in records if r["action"].startswith("canary_")]
    assert canary == ["canary_start", "canary_advance", "canary_advance", "canary_abort"]
    evidence = records[-1]["evidence"]["analysis"]["comparisons"][0]
    assert (evidence["metric"], evidence["samples"], evidence["threshold"]) == ("error-ratio", 5000, 0.01)
    assert evidence["candidate"] == 0.08 and evidence["stable"] == 0.0 and evidence["passed"] is False
    manifest = (home / "data" / "serving" / "churn" / "prod.json").read_text()
    assert '"1": 100' in manifest
