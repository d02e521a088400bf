"""The quality and attribution blocks of the policy file, the quality SLIs and the quality gate flag."""

from __future__ import annotations

import pytest

from modelpilot.exceptions import PolicyError
from modelpilot.policy import load_policy_text
from modelpilot.quality.verdict import rule_breach


def policy(block: str):
    return load_policy_text("version: 1\n" + block)


def test_defaults_and_overlay():
    p = policy(
        """
defaults:
  quality: {window: 12h, positive_label: 1, thresholds: [{metric: roc_auc, min: 0.7}]}
  attribution: {threshold: 0.8}
  environments: {prod: {require_quality_healthy: true}}
models:
  churn: {}
  price:
    quality: {task: regression, thresholds: [{metric: mae, max_rise: 0.1, relative: true}]}
"""
    )
    churn = p.model_policy("churn")
    assert churn.quality is not None and churn.quality.window_seconds == 12 * 3600
    assert churn.quality.positive_label == "1" and churn.attribution.threshold == 0.8
    assert p.model_policy("price").quality.task == "regression"
    assert p.model_policy("price").attribution.threshold == 0.8  # not overridden: the defaults' block
    assert p.gates_for("churn", "prod").require_quality_healthy is True
    assert p.gates_for("churn", "staging").require_quality_healthy is False


@pytest.mark.parametrize(
    ("block", "field"),
    [
        ("quality: {thresholds: [{metric: bleu, min: 1}]}", "thresholds"),
        ("quality: {thresholds: [{metric: accuracy}]}", "thresholds"),
        ("quality: {task: regression, thresholds: [{metric: accuracy, min: 0.5}]}", "quality"),
        ("quality: {window: 90m}", "quality"),
        ("quality: {window: soon}", "window"),
        ("quality: {min_coverage: 1.5}", "min_coverage"),
        ("quality: {colums: {}}", "colums"),
        ("attribution: {threshold: 0}", "threshold"),
        ("attribution: {hook: 'not a hook'}", "hook"),
    ],
)
def test_bad_blocks_are_policy_errors_naming_the_field(block, field):
    with pytest.raises(PolicyError) as info:
        policy(f"defaults:\n  {block}\n")
    assert field in str(info.value)


def test_quality_sli_needs_its_metric_and_bounds():
    ok = policy(
        """
environments: [prod]
defaults:
  slos:
    - {name: acc, environment: prod, objective: 0.9, sli: {kind: quality, source: quality, metric: accuracy,
       op: ">=", limit: 0.8}}
    - {name: right, environment: prod, objective: 0.9, sli: {kind: quality, source: quality, metric: correct}}
"""
    )
    assert [s.sli.source for s in ok.defaults.slos] == ["quality", "quality"]
    for sli in (
        "{kind: ratio, source: quality, metric: accuracy}",
        "{kind: quality, source: quality}",
        "{kind: quality, source: quality, metric: accuracy}",
    ):
        with pytest.raises(PolicyError):
            policy(
                f"environments: [prod]\ndefaults:\n  slos: [{{name: a, environment: prod, objective: 0.9, sli: {sli}}}]\n"
            )


def test_rules_absolute_and_against_the_reference():
    p = policy(
        """
defaults:
  quality:
    thresholds:
      - {metric: accuracy, min: 0.8}
      - {metric: roc_auc, max_drop: 0.05}
      - {metric: log_loss, max_rise: 0.1, relative: true}
"""
    )
    absolute, drop, rise = p.defaults.quality.thresholds
    assert rule_breach(absolute, 0.79, None) and not rule_breach(absolute, 0.8, None)
    assert rule_breach(drop, 0.79, 0.85) and not rule_breach(drop, 0.81, 0.85)
    assert rule_breach(drop, 0.5, None) is None  # no reference value: cannot be judged
    assert rule_breach(rise, 0.56, 0.5) and not rule_breach(rise, 0.54, 0.5)
    assert rule_breach(absolute, None, 0.9) is None
    assert str(rise) == "log_loss rise <= 0.1 of the reference"


def test_quality_sli_counters_name_what_the_source_reads():
    p = policy(
        """
environments: [prod]
defaults:
  slos:
    - {name: acc, environment: prod, objective: 0.9, sli: {kind: quality, source: quality, metric: roc_auc,
       op: ">=", limit: 0.8}}
    - {name: right, environment: prod, objective: 0.9, sli: {kind: quality, source: quality, metric: correct}}
"""
    )
    timeslice, ratio = p.defaults.slos
    assert timeslice.sli.counters()["value"].query == "roc_auc"
    query = timeslice.query("churn", version=3)
    assert (query.source, query.kind, query.total, query.params["metric"]) == (
        "quality",
        "timeslice",
        "roc_auc",
        "roc_auc",
    )
    assert query.params["labels"] == {"model": "churn", "environment": "prod", "version": 3}
    assert {k: q.query for k, q in ratio.sli.counters().items()} == {"good": "correct", "total": "labelled"}
