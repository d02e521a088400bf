"""The generated Prometheus rules and the Grafana dashboard, checked by promtool and read the way Grafana reads them.

* the committed rules are exactly what ``modelpilot slo rules`` generates from the example policy;
* ``promtool check rules`` accepts them, and ``promtool test rules`` runs every file of
  ``infra/prometheus/tests/`` (hand-computed burn rates at the alert edges);
* the dashboard has a schema version Grafana migrates from, unique panel ids and refIds, panels
  on a 24-column grid, every query parsed by promtool, and every metric it reads recorded by a rule.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from modelpilot.policy import load_policy
from modelpilot.slo.documents import dump_yaml
from modelpilot.slo.prometheus import prometheus_rules, recorded_names

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS = REPO / "infra" / "prometheus"
RULES = PROMETHEUS / "modelpilot-slo-rules.yaml"
DASHBOARD = REPO / "infra" / "dashboards" / "modelpilot-slo.json"
TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yaml"))
#: Grafana 9.0's schema is 36; 11.x writes 39-41 (older dashboards are migrated on load, newer are refused)
SCHEMA_VERSIONS = range(36, 42)


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def generated() -> dict:
    policy = load_policy(PROMETHEUS / "example-policy.yaml")
    return prometheus_rules([(m, s) for m in sorted(policy.models) for s in policy.model_policy(m).slos])


def test_committed_rules_are_the_generated_rules():
    assert RULES.read_text(encoding="utf-8") == dump_yaml(generated())


def test_promtool_accepts_the_rules():
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("test_file", TESTS, ids=[t.name for t in TESTS])
def test_promtool_unit_tests_of_the_rules(test_file):
    assert TESTS, "no promtool test files in infra/prometheus/tests"
    done = subprocess.run(
        [promtool(), "test", "rules", test_file.name], cwd=test_file.parent, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_promtool_unit_tests_fail_on_rules_that_lose_absent_series(tmp_path):
    """The tests can fail: rules whose ratio drops a missing error series make the healthy-model case fail."""
    broken = RULES.read_text(encoding="utf-8").replace(" or vector(0))", ")")
    assert broken != RULES.read_text(encoding="utf-8")
    (tmp_path / "modelpilot-slo-rules.yaml").write_text(broken, encoding="utf-8")
    tests = tmp_path / "tests"
    tests.mkdir()
    for test_file in TESTS:
        shutil.copy(test_file, tests / test_file.name)
    done = subprocess.run(
        [promtool(), "test", "rules", *(t.name for t in TESTS)], cwd=tests, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr


# -- the dashboard, as Grafana loads it ----------------------------------------------------------
#: what Grafana substitutes for the dashboard's variables before the query reaches Prometheus
GRAFANA_VARIABLES = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "$model": ".*",
    "$environment": ".*",
}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def queries(board: dict) -> list[str]:
    """Every PromQL expression Grafana sends: panel targets, annotations, and the variables' selectors."""
    found = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    found += [a["expr"] for a in board["annotations"]["list"] if a.get("expr")]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
            assert match, f"variable {var['name']}: {query!r} is not label_values(selector, label)"
            found.append(match.group(1))
    return found


def substituted(expr: str) -> str:
    for name, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def test_dashboard_loads_as_grafana_loads_it():
    board = dashboard()
    assert board["schemaVersion"] in SCHEMA_VERSIONS and board["uid"] and board["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
    names = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "model", "environment"} <= names


def test_every_dashboard_query_parses_with_promtool(tmp_path):
    exprs = [substituted(e) for e in queries(dashboard())]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"q:{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    bad = path.with_name("bad.yaml")
    bad.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [{"record": "q", "expr": "rate(x[5m]"}]}]}))
    assert subprocess.run([promtool(), "check", "rules", str(bad)], capture_output=True).returncode != 0


def test_every_dashboard_metric_is_a_rule_name():
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    recorded = recorded_names(rules)
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    for expr in queries(dashboard()):
        text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values are not metric names
        metrics = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*\{)", text)) - {"__name__"}
        metrics |= {m for m in re.findall(r'__name__=~""', text)}  # a name regex: checked below
        for metric in metrics - {'__name__=~""'}:
            assert metric in recorded or metric == "ALERTS", f"{expr!r} reads {metric}, which no rule records"
        if "ALERTS{" in expr:
            assert re.search(r'alertname="(\w+)"', expr).group(1) in alerts
        if "__name__=~" in expr:
            pattern = re.search(r'__name__=~"([^"]+)"', expr).group(1)
            assert any(re.fullmatch(pattern, name) for name in recorded), expr


def test_dashboard_shows_every_multiwindow_pair_alerts_budget_and_releases():
    board = dashboard()
    panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in board["panels"]}
    for long, short in (("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")):
        assert any(
            any(f"slo_burn_rate:rate{long}{{" in e for e in exprs)
            and any(f"slo_burn_rate:rate{short}{{" in e for e in exprs)
            for exprs in panels.values()
        ), f"no panel plots the {long}/{short} pair"
    assert any(
        'ALERTS{alertname="ModelPilotSloBurnRate",alertstate="firing"' in e for es in panels.values() for e in es
    )
    over_time = [p for p in board["panels"] if p["type"] == "timeseries" and "budget" in p["title"].lower()]
    assert over_time and "modelpilot:slo_error_budget_remaining{" in over_time[0]["targets"][0]["expr"]
    annotations = {a["name"]: a.get("expr", "") for a in board["annotations"]["list"]}
    assert "modelpilot:promotions:increase5m" in annotations["Promotions"]
    assert "modelpilot:rollbacks:increase5m" in annotations["Rollbacks"]
