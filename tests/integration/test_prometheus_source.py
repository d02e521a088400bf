"""The Prometheus source against a real Prometheus, backfilled with series whose burn rates are known.

Series (one sample a minute, i = 0 … 180 from T0; window end E = T0 + 180 min):

* ``req_total{code="200"}``: +100 a minute; the counter resets after i = 100;
  the scrapes i = 140 … 149 are missing;
* ``req_total{code="500"}``: 0 until i = 120, then +20 a minute;
* ``lat_seconds`` histogram: 100 requests a minute, all under 0.25 s until
  i = 150, then 60 fast and 40 slow;
* ``accuracy`` gauge: 0.9 until i = 120, then 0.7.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from modelpilot.adapters.prometheus import PrometheusMetricsSource
from modelpilot.domain.audit import AuditEntry
from modelpilot.domain.model import AliasChange
from modelpilot.exceptions import InvalidInput, TransientError
from modelpilot.policy import load_policy, parse_policy
from modelpilot.policy.slo import SloSpec
from modelpilot.service.slo.evaluation import evaluate_slos
from modelpilot.slo.documents import dump_yaml
from modelpilot.slo.prometheus import prometheus_rules
from modelpilot.testing import fake_services
from tests.support.builders import manifest
from tests.support.prometheus import PrometheusServer, backfill, binary, free_port

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
T0 = NOW - timedelta(hours=6)
E = T0 + timedelta(minutes=180)
REPO = Path(__file__).resolve().parents[2]
LABELS = 'model="churn",environment="prod",version="4"'


def _openmetrics() -> str:
    lines = ["# TYPE req counter"]
    for code in ("200", "500"):
        for i in range(181):
            if code == "200" and 140 <= i <= 149:
                continue
            value = (100 * i if i <= 100 else 100 * (i - 100)) if code == "200" else (0 if i <= 120 else 20 * (i - 120))
            lines.append(f'req_total{{{LABELS},code="{code}"}} {value} {(T0 + timedelta(minutes=i)).timestamp():.0f}')
    lines.append("# TYPE lat_seconds histogram")
    for i in range(181):
        fast = 100 * i if i <= 150 else 100 * 150 + 60 * (i - 150)
        ts = f"{(T0 + timedelta(minutes=i)).timestamp():.0f}"
        lines += [
            f'lat_seconds_bucket{{{LABELS},le="0.25"}} {fast} {ts}',
            f'lat_seconds_bucket{{{LABELS},le="+Inf"}} {100 * i} {ts}',
            f"lat_seconds_count{{{LABELS}}} {100 * i} {ts}",
            f"lat_seconds_sum{{{LABELS}}} {10 * i} {ts}",
        ]
    lines.append("# TYPE accuracy gauge")
    for i in range(181):
        lines.append(f"accuracy{{{LABELS}}} {0.9 if i <= 120 else 0.7} {(T0 + timedelta(minutes=i)).timestamp():.0f}")
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    root = tmp_path_factory.mktemp("prometheus")
    backfill(_openmetrics(), root / "data")
    server = PrometheusServer(root / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def source(prometheus):
    return PrometheusMetricsSource(prometheus.url, lookback=300)


def _spec(**sli) -> SloSpec:
    return SloSpec.model_validate(
        {
            "name": "s",
            "environment": "prod",
            "objective": sli.pop("objective", 0.99),
            "window": "30d",
            "sli": {"source": "prometheus", **sli},
        }
    )


AVAILABILITY = _spec(
    kind="ratio",
    bad={"query": 'req_total{model="$model",code="500"}'},
    total={"query": 'req_total{model="$model",environment="$environment"}'},
)


def _counts(source, spec, minutes, end=E):
    return source.counts(spec.query("churn", version=4), end - timedelta(minutes=minutes), end)


def test_ratio_counts_match_hand_computed_values(source):
    # last hour: baseline i=120, samples 121..180 → good 6000 (100/min), bad 1200 (20/min)
    hour = _counts(source, AVAILABILITY, 60)
    assert (hour.total, hour.total - hour.good) == (7200.0, 1200.0)
    five = _counts(source, AVAILABILITY, 5)
    assert (five.total, five.total - five.good) == (600.0, 100.0)


def test_counter_reset_and_missing_scrapes_are_bridged(source):
    # three hours from T0: the ok counter reset after i=100 and lost scrapes 140..149, yet grew 100 a minute
    whole = _counts(source, AVAILABILITY, 180)
    assert whole.total - (whole.total - whole.good) == 18000.0
    assert whole.total == 18000.0 + 1200.0
    # the window over the reset alone: i=91..110 → 20 minutes of 100
    reset = _counts(source, AVAILABILITY, 20, end=T0 + timedelta(minutes=110))
    assert reset.good == 2000.0


def test_missing_data_and_no_traffic_are_told_apart(source):
    before = _counts(source, AVAILABILITY, 60, end=T0 - timedelta(hours=2))
    assert before.points == 0
    quiet = _counts(source, AVAILABILITY, 30, end=T0 + timedelta(minutes=60))  # samples, no errors
    assert quiet.points > 0 and quiet.good == quiet.total == 3000.0


def test_burn_rates_and_alert_from_the_real_server(source):
    spec = AVAILABILITY.model_copy(update={"name": "availability"})
    svc = fake_services(
        parse_policy({"models": {"churn": {"slos": [spec.model_dump(mode="json")]}}}),
        metrics_sources={"prometheus": source},
    )
    # one live version so the evaluation has something to look at
    reg = svc.registry
    reg.register_version(
        manifest=manifest(),
        manifest_digest="d",
        package_uri="p",
        registered_by="a",
        registered_at=T0,
        source="upload",
        external_id=None,
        status="registered",
        audit=AuditEntry(model="churn", actor="a", action="register", timestamp=T0),
    )
    reg.move_alias(
        change=AliasChange("churn", "prod", 1, None, 1, "promote", "a", "r", T0),
        expected_revision=0,
        audit=AuditEntry(model="churn", actor="a", action="promote", timestamp=T0),
    )
    report = evaluate_slos(svc, E, "churn")[0]
    assert report.error is None
    # 1h and 5m: error ratio 1/6 → burn (1/6)/0.01
    assert report.burn_rates[3600] == pytest.approx(100 / 6)
    assert report.burn_rates[300] == pytest.approx(100 / 6)
    assert report.firing is not None and report.firing.severity == "page"
    assert report.firing.long_window == 3600


def test_latency_from_histogram_buckets(source):
    spec = _spec(kind="threshold", objective=0.95, threshold_ms=250, histogram={"query": 'lat_seconds{model="$model"}'})
    hour = _counts(source, spec, 60)
    # i=121..180: 30 minutes all fast (3000) + 30 minutes 60 fast (1800) of 6000
    assert (hour.good, hour.total) == (4800.0, 6000.0)
    assert (hour.total - hour.good) / hour.total / (1 - 0.95) == pytest.approx(4.0)


def test_quality_metric_per_timeslice_uses_query_range(source):
    spec = _spec(
        kind="quality",
        metric="accuracy",
        op=">=",
        limit=0.8,
        timeslice="1h",
        value={"query": 'avg_over_time(accuracy{model="$model"}[1h])'},
    )
    counts = _counts(source, spec, 180)
    # slices ending E-2h, E-1h (accuracy 0.9) and E (0.7)
    assert (counts.good, counts.total) == (2.0, 3.0)


def test_generated_recording_rule_agrees_with_the_exact_count(source):
    rules = prometheus_rules([("churn", AVAILABILITY.model_copy(update={"name": "availability"}))])
    expr = next(
        r["expr"] for g in rules["groups"] for r in g["rules"] if r.get("record") == "modelpilot:slo_error_ratio:rate1h"
    )
    result = source.query(expr, E)["result"]
    # rate() extrapolates at the window's edges; the ratio of two rates stays within a percent of 1/6
    assert float(result[0]["value"][1]) == pytest.approx(1 / 6, rel=0.01)


def test_bad_query_is_invalid_input_and_dead_server_is_transient(source):
    with pytest.raises(InvalidInput):
        source.increase("req_total{", E - timedelta(hours=1), E)
    dead = PrometheusMetricsSource(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(TransientError, match="cannot reach Prometheus"):
        dead.counts(AVAILABILITY.query("churn", version=4), E - timedelta(hours=1), E)


def test_generated_rules_pass_promtool(tmp_path):
    policy = load_policy(REPO / "infra" / "prometheus" / "example-policy.yaml")
    slos = [(m, s) for m in sorted(policy.models) for s in policy.model_policy(m).slos]
    out = tmp_path / "rules.yaml"
    out.write_text(dump_yaml(prometheus_rules(slos)), encoding="utf-8")
    for path in (out, REPO / "infra" / "prometheus" / "modelpilot-slo-rules.yaml"):
        done = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "SUCCESS" in done.stdout
    committed = yaml.safe_load((REPO / "infra" / "prometheus" / "modelpilot-slo-rules.yaml").read_text())
    assert committed == prometheus_rules(slos), "regenerate infra/prometheus/modelpilot-slo-rules.yaml"


def test_long_windows_use_server_side_increase_within_a_scrape(prometheus):
    # with the raw limit at 1h the 3-hour window is computed by Prometheus: increase() extrapolates a little
    # at the edges, and handles the reset and the missing scrapes itself
    server_side = PrometheusMetricsSource(prometheus.url, raw_window_limit=3600)
    counts = _counts(server_side, AVAILABILITY, 180)
    # 171 + 181 samples in [T0, E] (Prometheus 2 ranges include their start; 3.x drops the sample at T0)
    assert counts.points in (352, 350)
    assert counts.total == pytest.approx(19200.0, rel=1 / 180)
    assert counts.total - counts.good == pytest.approx(1200.0, rel=1 / 60)
    empty = _counts(server_side, AVAILABILITY, 180, end=T0 - timedelta(hours=1))
    assert (empty.points, empty.total) == (0, 0.0)
