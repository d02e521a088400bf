"""Every gate kind, passing and failing, evaluated purely."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from modelpilot.domain.gates import GateContext, evaluate_gates, regression_check
from modelpilot.domain.model import Approval, ModelVersion, MonitorStatus
from modelpilot.policy import EnvironmentGates, RegressionRule
from tests.support.builders import T0, manifest


def version(n: int = 2, *, auc: float = 0.85, latency: float = 20.0, by: str = "alice", status: str = "registered"):
    return ModelVersion(
        "churn", n, f"d{n}", manifest(auc=auc, seed=str(n), latency_p95_ms=latency), "pkg", by, T0, status
    )  # type: ignore[arg-type]


def ctx(**kw):
    base = dict(
        candidate=version(),
        environment="prod",
        now=T0 + timedelta(hours=5),
        previous_environment="staging",
        in_previous_since=T0,
    )
    base.update(kw)
    return GateContext(**base)


def gate(report, name):
    (result,) = [r for r in report.results if r.gate == name]
    return result


def test_thresholds_pass_and_fail_with_numbers():
    gates = EnvironmentGates(thresholds=["auc >= 0.80", "latency_p95_ms <= 50"])
    report = evaluate_gates(gates, ctx())
    assert report.passed
    assert gate(report, "threshold:auc").observed == 0.85
    failing = evaluate_gates(gates, ctx(candidate=version(auc=0.7, latency=80)))
    assert not failing.passed
    assert {f.gate for f in failing.failures} == {"threshold:auc", "threshold:latency_p95_ms"}
    assert "auc=0.7 does not meet auc >= 0.8" in gate(failing, "threshold:auc").reason


def test_threshold_on_missing_metric_fails():
    report = evaluate_gates(EnvironmentGates(thresholds=["f1 >= 0.5"]), ctx())
    assert gate(report, "threshold:f1").status == "failed"
    assert "missing" in gate(report, "threshold:f1").reason


@pytest.mark.parametrize(
    ("rule", "candidate", "baseline", "ok", "bound"),
    [
        (RegressionRule(metric="auc"), 0.80, 0.80, True, 0.80),
        (RegressionRule(metric="auc"), 0.79, 0.80, False, 0.80),
        (RegressionRule(metric="auc", min_absolute_change=-0.02), 0.79, 0.80, True, 0.78),
        (RegressionRule(metric="auc", min_absolute_change=0.01), 0.805, 0.80, False, 0.81),
        (RegressionRule(metric="auc", min_absolute_change=None, min_relative_change=0.05), 0.83, 0.80, False, 0.84),
        (RegressionRule(metric="latency", greater_is_better=False), 21.0, 20.0, False, 20.0),
        (RegressionRule(metric="latency", greater_is_better=False, min_absolute_change=-2.0), 21.0, 20.0, True, 22.0),
        (
            RegressionRule(metric="latency", greater_is_better=False, min_absolute_change=0.0, min_relative_change=0.1),
            19.0,
            20.0,
            False,
            18.0,
        ),
    ],
)
def test_regression_rule_semantics(rule, candidate, baseline, ok, bound):
    passed, got = regression_check(rule, candidate, baseline)
    assert passed is ok
    assert got == pytest.approx(bound)


def test_no_regression_against_incumbent():
    gates = EnvironmentGates(no_regression=[RegressionRule(metric="auc", min_absolute_change=-0.01)])
    assert gate(evaluate_gates(gates, ctx()), "no_regression:auc").status == "skipped"
    worse = evaluate_gates(gates, ctx(candidate=version(3, auc=0.70), incumbent=version(2, auc=0.85)))
    result = gate(worse, "no_regression:auc")
    assert result.status == "failed"
    assert result.expected == {"baseline": 0.85, "bound": pytest.approx(0.84)}
    better = evaluate_gates(gates, ctx(candidate=version(3, auc=0.90), incumbent=version(2, auc=0.85)))
    assert gate(better, "no_regression:auc").status == "passed"


def test_soak_time():
    gates = EnvironmentGates(soak="6h")
    assert gate(evaluate_gates(gates, ctx()), "soak").status == "failed"  # 5h < 6h
    assert gate(evaluate_gates(gates, ctx(now=T0 + timedelta(hours=6))), "soak").status == "passed"
    first = evaluate_gates(gates, ctx(previous_environment=None, in_previous_since=None))
    assert gate(first, "soak").status == "skipped"


def test_order_requires_the_previous_environment():
    report = evaluate_gates(EnvironmentGates(), ctx(in_previous_since=None))
    assert gate(report, "order").status == "failed"
    assert "promote it there first" in gate(report, "order").reason


def test_approvals_and_four_eyes():
    gates = EnvironmentGates(approvals=1)
    assert gate(evaluate_gates(gates, ctx()), "approvals").status == "failed"
    own = [Approval("churn", 2, "prod", "alice", T0)]
    result = gate(evaluate_gates(gates, ctx(approvals=own)), "approvals")
    assert result.status == "failed" and "registrant, four-eyes" in result.reason
    other = [Approval("churn", 2, "prod", "bob", T0)]
    assert gate(evaluate_gates(gates, ctx(approvals=other)), "approvals").status == "passed"
    two = EnvironmentGates(approvals=2, approvers=["*@example.com"])
    mixed = [Approval("churn", 2, "prod", "bob@example.com", T0), Approval("churn", 2, "prod", "eve@evil.test", T0)]
    result = gate(evaluate_gates(two, ctx(approvals=mixed)), "approvals")
    assert result.status == "failed" and "not an allowed approver" in result.reason
    no_four_eyes = EnvironmentGates(approvals=1, four_eyes=False)
    assert gate(evaluate_gates(no_four_eyes, ctx(approvals=own)), "approvals").status == "passed"


def test_monitor_gates_pass_when_nothing_reported_and_say_so():
    gates = EnvironmentGates(require_no_drift_alert=True, require_slo_healthy=True)
    report = evaluate_gates(gates, ctx())
    assert report.passed
    assert "no monitor has reported" in gate(report, "no_drift_alert").reason
    alert = MonitorStatus("churn", "staging", "drift", "alert", 2, T0, "psi 0.4 on x")
    slo_alert = MonitorStatus("churn", "staging", "slo", "alert", 2, T0, "burn 14.4")
    blocked = evaluate_gates(gates, ctx(drift_status=alert, slo_status=slo_alert))
    assert {f.gate for f in blocked.failures} == {"no_drift_alert", "slo_healthy"}
    ok = replace(alert, state="ok")
    assert gate(evaluate_gates(gates, ctx(drift_status=ok)), "no_drift_alert").status == "passed"


def test_rejected_and_pending_versions_fail_status_gate():
    assert (
        gate(evaluate_gates(EnvironmentGates(), ctx(candidate=version(status="rejected"))), "status").status == "failed"
    )
    pending = evaluate_gates(EnvironmentGates(), ctx(candidate=version(status="pending_approval")))
    assert gate(pending, "status").status == "failed"


def test_report_digest_is_stable_and_content_sensitive():
    gates = EnvironmentGates(thresholds=["auc >= 0.8"])
    a = evaluate_gates(gates, ctx())
    b = evaluate_gates(gates, ctx())
    c = evaluate_gates(gates, ctx(candidate=version(auc=0.81)))
    assert a.digest() == b.digest() != c.digest()
    assert len(a.digest()) == 64
