"""Each gate function on its own, and the table that runs them in the report's order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modelpilot.domain.gates import (
    GATES,
    GateContext,
    check_approvals,
    check_no_drift_alert,
    check_no_regression,
    check_order,
    check_quality_healthy,
    check_slo_healthy,
    check_soak,
    check_status,
    check_thresholds,
    evaluate_gates,
)
from modelpilot.domain.model import Approval, ModelVersion, MonitorStatus
from modelpilot.policy import EnvironmentGates
from tests.support.builders import T0, manifest

NOTHING = EnvironmentGates()


def version(n: int = 2, *, by: str = "alice", status: str = "registered", **metrics: float) -> ModelVersion:
    values = {"auc": 0.85, **metrics}
    return ModelVersion("churn", n, f"d{n}", manifest(seed=str(n), **values), "pkg", by, T0, status)  # type: ignore[arg-type]


def ctx(**kw: object) -> GateContext:
    base: dict[str, object] = {
        "candidate": version(),
        "environment": "prod",
        "now": T0 + timedelta(hours=5),
        "previous_environment": "staging",
        "in_previous_since": T0,
    }
    base.update(kw)
    return GateContext(**base)  # type: ignore[arg-type]


def summary(results):
    return [(r.gate, r.status) for r in results]


@pytest.mark.parametrize(
    ("status", "expected"),
    [("registered", "passed"), ("approved", "passed"), ("rejected", "failed"), ("pending_approval", "failed")],
)
def test_status_gate_always_reports_once(status, expected):
    [result] = check_status(NOTHING, ctx(candidate=version(status=status)))
    assert (result.gate, result.status, result.observed) == ("status", expected, status)


def test_order_gate_is_absent_in_the_first_environment_and_names_the_previous_one():
    assert check_order(NOTHING, ctx(previous_environment=None, in_previous_since=None)) == []
    [missing] = check_order(NOTHING, ctx(in_previous_since=None))
    assert missing.status == "failed" and missing.reason == "v2 is not in staging; promote it there first"
    assert summary(check_order(NOTHING, ctx())) == [("order", "passed")]


def test_threshold_gate_gives_one_result_per_threshold_in_policy_order():
    gates = EnvironmentGates(thresholds=["latency_p95_ms <= 50", "auc >= 0.9", "f1 >= 0.5"])
    results = check_thresholds(gates, ctx(candidate=version(latency_p95_ms=20.0)))
    assert summary(results) == [
        ("threshold:latency_p95_ms", "passed"),
        ("threshold:auc", "failed"),
        ("threshold:f1", "failed"),
    ]
    assert results[1].observed == 0.85 and results[1].expected == "auc >= 0.9"
    assert results[2].reason == "metric 'f1' missing from the manifest" and results[2].observed is None
    assert check_thresholds(NOTHING, ctx()) == []


def test_no_regression_gate_skips_what_it_cannot_compare_and_fails_a_missing_candidate_metric():
    gates = EnvironmentGates(no_regression=[{"metric": "auc"}, {"metric": "f1"}])
    nobody = check_no_regression(gates, ctx())
    assert summary(nobody) == [("no_regression:auc", "skipped"), ("no_regression:f1", "skipped")]
    assert nobody[0].reason == "no version in prod to compare with"
    same = check_no_regression(gates, ctx(incumbent=version()))
    assert {r.reason for r in same} == {"candidate is the incumbent"}
    results = check_no_regression(gates, ctx(candidate=version(3, auc=0.86), incumbent=version(2, f1=0.5)))
    assert summary(results) == [("no_regression:auc", "passed"), ("no_regression:f1", "failed")]
    assert results[1].reason == "metric 'f1' missing from the candidate"
    old_lacks = check_no_regression(gates, ctx(candidate=version(3, f1=0.4), incumbent=version(2)))
    assert summary(old_lacks) == [("no_regression:auc", "passed"), ("no_regression:f1", "skipped")]
    assert old_lacks[1].reason == "incumbent v2 has no 'f1'"


def test_soak_gate_counts_seconds_in_the_previous_environment():
    gates = EnvironmentGates(soak="5h")
    [exact] = check_soak(gates, ctx())
    assert (exact.status, exact.observed, exact.expected) == ("passed", 5 * 3600, 5 * 3600)
    [short] = check_soak(gates, ctx(now=T0 + timedelta(hours=5) - timedelta(seconds=1)))
    assert short.status == "failed"
    [gone] = check_soak(gates, ctx(in_previous_since=None))
    assert (gone.status, gone.reason) == ("failed", "not in staging")
    assert summary(check_soak(gates, ctx(previous_environment=None))) == [("soak", "skipped")]
    assert check_soak(NOTHING, ctx()) == []


def test_approvals_gate_counts_each_allowed_approver_once():
    gates = EnvironmentGates(approvals=2, approvers=["*@example.com", "bob"])
    approvals = [
        Approval("churn", 2, "prod", "bob", T0),
        Approval("churn", 2, "prod", "bob", T0 + timedelta(minutes=1)),
        Approval("churn", 2, "prod", "eve@evil.test", T0),
        Approval("churn", 2, "prod", "alice", T0),
    ]
    [result] = check_approvals(gates, ctx(approvals=approvals))
    assert result.status == "failed" and result.observed == ["bob"]
    assert result.reason == (
        "1 of 2 approvals (bob); not counted: eve@evil.test (not an allowed approver), alice (registrant, four-eyes)"
    )
    carol = Approval("churn", 2, "prod", "carol@example.com", T0)
    [enough] = check_approvals(gates, ctx(approvals=[*approvals, carol]))
    assert enough.status == "passed" and enough.observed == ["bob", "carol@example.com"]
    assert check_approvals(NOTHING, ctx(approvals=approvals)) == []


@pytest.mark.parametrize(
    ("check", "flag", "kind", "name"),
    [
        (check_no_drift_alert, "require_no_drift_alert", "drift", "no_drift_alert"),
        (check_slo_healthy, "require_slo_healthy", "slo", "slo_healthy"),
        (check_quality_healthy, "require_quality_healthy", "quality", "quality_healthy"),
    ],
)
def test_monitor_gates_read_their_own_monitor_only(check, flag, kind, name):
    gates = EnvironmentGates(**{flag: True})
    alert = MonitorStatus("churn", "staging", kind, "alert", 2, T0, "open")
    field = f"{kind}_status"
    [failed] = check(gates, ctx(**{field: alert}))
    assert (failed.gate, failed.status, failed.reason) == (name, "failed", "open alert in staging (v2): open")
    for other in {"drift_status", "slo_status", "quality_status"} - {field}:
        assert summary(check(gates, ctx(**{other: alert}))) == [(name, "passed")]
    assert summary(check(gates, ctx(previous_environment=None, **{field: alert}))) == [(name, "skipped")]
    assert check(NOTHING, ctx(**{field: alert})) == []


def test_the_report_lists_gates_in_table_order():
    assert [g.__name__ for g in GATES] == [
        "check_status",
        "check_order",
        "check_thresholds",
        "check_no_regression",
        "check_soak",
        "check_approvals",
        "check_no_drift_alert",
        "check_slo_healthy",
        "check_quality_healthy",
    ]
    every = EnvironmentGates(
        thresholds=["auc >= 0.8"],
        no_regression=[{"metric": "auc"}],
        soak="1h",
        approvals=1,
        require_no_drift_alert=True,
        require_slo_healthy=True,
        require_quality_healthy=True,
    )
    report = evaluate_gates(every, ctx())
    assert [r.gate for r in report.results] == [
        "status",
        "order",
        "threshold:auc",
        "no_regression:auc",
        "soak",
        "approvals",
        "no_drift_alert",
        "slo_healthy",
        "quality_healthy",
    ]
    assert list(report.results) == [r for check in GATES for r in check(every, ctx())]
