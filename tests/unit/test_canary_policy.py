"""The ``canary`` block of an environment: strict validation with messages that say what to fix."""

from __future__ import annotations

import pytest

from modelpilot.exceptions import PolicyError
from modelpilot.policy import load_policy_text, policy_schema

GOOD = """
environments: [dev, prod]
defaults:
  slos:
    - {name: avail, environment: prod, objective: 0.99,
       sli: {kind: ratio, source: local, good: {query: requests.ok}, total: {query: requests}}}
  environments:
    prod:
      canary:
        steps: [5, 25, 50, 100]
        interval: 10m
        min_samples: 200
        failure_limit: 1
        analysis:
          - {name: error-ratio, threshold: 0.01}
          - {name: avail, slo: avail, threshold: 0.02}
models:
  churn:
    environments:
      prod: {approvals: 1}
"""


def canary_policy(block: str) -> str:
    return f"environments: [dev, prod]\ndefaults:\n  environments:\n    prod:\n      canary: {block}\n"


def test_a_canary_block_is_read_and_inherited_by_a_model_that_overrides_other_gates():
    policy = load_policy_text(GOOD)
    canary = policy.gates_for("churn", "prod").canary
    assert canary is not None
    assert (canary.steps, canary.interval, canary.min_samples, canary.failure_limit) == ([5, 25, 50, 100], 600, 200, 1)
    assert [m.name for m in canary.metrics()] == ["error-ratio", "avail"]
    assert policy.gates_for("churn", "prod").approvals == 1
    assert policy.gates_for("churn", "dev").canary is None


def test_no_analysis_means_the_default_error_ratio():
    policy = load_policy_text(canary_policy("{steps: [10, 100], interval: 5m}"))
    (metric,) = policy.gates_for("churn", "prod").canary.metrics()
    assert (metric.name, metric.slo, metric.sli, metric.threshold) == ("error-ratio", None, None, 0.01)


def test_a_drift_metric_needs_no_threshold_and_allows_warnings_by_default():
    block = "{steps: [10, 100], interval: 5m, analysis: [{name: drift, kind: drift}, {name: e, threshold: 0.02}]}"
    drift, ratio = load_policy_text(canary_policy(block)).gates_for("churn", "prod").canary.metrics()
    assert (drift.kind, drift.threshold, drift.max_severity, drift.limit) == ("drift", None, None, 1.0)
    assert (ratio.kind, ratio.limit) == ("ratio", 0.02)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{steps: [50, 25, 100], interval: 10m}", "strictly increasing"),
        ("{steps: [5, 5, 100], interval: 10m}", "strictly increasing"),
        ("{steps: [0, 100], interval: 10m}", "must be 1..100"),
        ("{steps: [5, 150], interval: 10m}", "must be 1..100"),
        ("{steps: [5, 50], interval: 10m}", "last step must be 100"),
        ("{steps: [100], interval: 10m}", "a step below 100"),
        ("{steps: [], interval: 10m}", "steps"),
        ("{steps: [5, 100], interval: 30s}", "too short"),
        ("{steps: [5, 100], interval: soon}", "invalid duration"),
        ("{steps: [5, 100]}", "interval"),
        ("{steps: [5, 100], interval: 10m, min_samples: 0}", "min_samples"),
        ("{steps: [5, 100], interval: 10m, failure_limit: -1}", "failure_limit"),
        ("{steps: [5, 100], interval: 10m, wait: 5}", "wait"),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: e, threshold: 2}]}", "threshold"),
        (
            "{steps: [5, 100], interval: 10m, analysis: [{name: e, threshold: 0.1}, {name: e, threshold: 0.2}]}",
            "unique",
        ),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: e, threshold: 0.1, slo: nope}]}", "not an SLO of prod"),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: 'Bad Name', threshold: 0.1}]}", "name"),
        (
            "{steps: [5, 100], interval: 10m, analysis: [{name: q, threshold: 0.1, "
            "sli: {kind: quality, source: quality, metric: correct}}]}",
            "quality SLI",
        ),
        (
            "{steps: [5, 100], interval: 10m, analysis: [{name: q, threshold: 0.1, slo: a, "
            "sli: {kind: ratio, good: {query: requests.ok}, total: {query: requests}}}]}",
            "not both",
        ),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: e}]}", "threshold is required"),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: e, threshold: 0.1, max_severity: none}]}", "kind: drift"),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: d, kind: drift, slo: avail}]}", "leave out slo and sli"),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: d, kind: drift, max_severity: high}]}", "max_severity"),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: d, kind: psi}]}", "kind"),
        ("{steps: [5, 100], interval: 10m, analysis: [{name: d, kind: drift, threshold: 1.5}]}", "threshold"),
    ],
)
def test_invalid_canary_blocks_are_refused_naming_the_problem(block, message):
    with pytest.raises(PolicyError, match=message) as info:
        load_policy_text(canary_policy(block))
    assert "canary" in str(info.value)


def test_a_model_canary_may_name_the_models_own_slo_but_not_one_of_another_environment():
    text = """
environments: [dev, prod]
models:
  churn:
    slos:
      - {name: avail, environment: dev, objective: 0.99,
         sli: {kind: ratio, source: local, good: {query: requests.ok}, total: {query: requests}}}
    environments:
      prod:
        canary: {steps: [5, 100], interval: 10m, analysis: [{name: a, slo: avail, threshold: 0.1}]}
"""
    with pytest.raises(PolicyError, match="names slo 'avail', which is not an SLO of prod"):
        load_policy_text(text)
    assert load_policy_text(text.replace("environment: dev", "environment: prod")).gates_for("churn", "prod").canary


def test_the_schema_describes_the_canary_block():
    schema = policy_schema()
    assert "CanaryPolicy" in schema["$defs"] and "CanaryMetric" in schema["$defs"]
