"""Burn-rate and budget maths against hand-computed cases, and properties (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.domain.slo import (
    WindowCounts,
    budget_remaining,
    burn_rate,
    counter_increase,
    error_ratio,
    evaluate_rules,
    scaled_burn_rate,
)

HOUR, DAY = 3600, 86400


def test_hand_computed_burn_rate_and_budget():
    # 1000 requests, 20 failed, objective 99.5 %: error ratio 0.02, budget 0.005 → burn 4
    counts = WindowCounts(good=980, total=1000)
    assert error_ratio(counts) == pytest.approx(0.02)
    assert burn_rate(counts, 0.995) == pytest.approx(4.0)
    # over the SLO window the same ratio spends 4 budgets: 1 - 4 = -3 (overspent)
    assert budget_remaining(counts, 0.995) == pytest.approx(-3.0)
    # 2 failures out of 1000 with a 99.5 % objective: 40 % of the budget spent
    assert budget_remaining(WindowCounts(998, 1000), 0.995) == pytest.approx(0.6)


def test_workbook_table_is_reproduced_by_scaling():
    month = 30 * DAY
    assert scaled_burn_rate(0.02, month, HOUR) == pytest.approx(14.4)
    assert scaled_burn_rate(0.05, month, 6 * HOUR) == pytest.approx(6.0)
    assert scaled_burn_rate(0.10, month, DAY) == pytest.approx(3.0)
    assert scaled_burn_rate(0.10, month, 3 * DAY) == pytest.approx(1.0)
    assert scaled_burn_rate(0.02, 28 * DAY, HOUR) == pytest.approx(13.44)


def test_empty_window_is_missing_data_not_zero():
    missing = WindowCounts(0, 0, points=0)
    assert error_ratio(missing) is None
    assert burn_rate(missing, 0.99) is None
    assert budget_remaining(missing, 0.99) is None


def test_no_traffic_burns_nothing():
    idle = WindowCounts(0, 0, points=12)
    assert error_ratio(idle) == 0.0
    assert burn_rate(idle, 0.99) == 0.0
    assert budget_remaining(idle, 0.99) == 1.0


def test_inconsistent_counts_are_clamped():
    assert error_ratio(WindowCounts(good=120, total=100)) == 0.0  # good > total (skew between counters)
    assert error_ratio(WindowCounts(good=-5, total=100)) == 1.0


def test_invalid_objective_is_rejected():
    for objective in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="objective"):
            burn_rate(WindowCounts(1, 1), objective)


def test_counter_reset_counts_as_restart_from_zero():
    # 0 → 10 → 25, reset, 5 → 12: increase 25 + 5 + 7 = 37
    samples = [(0, 0.0), (60, 10.0), (120, 25.0), (180, 5.0), (240, 12.0)]
    assert counter_increase(samples) == 37.0
    # with a baseline before the window the first sample counts from it
    assert counter_increase([(60, 10.0), (120, 25.0)], baseline=4.0) == 21.0
    # a reset right at the first sample after the baseline
    assert counter_increase([(60, 3.0)], baseline=50.0) == 3.0


def test_counter_missing_points_and_single_sample():
    assert counter_increase([]) == 0.0
    assert counter_increase([(0, 42.0)]) == 0.0  # born inside the window: no known growth
    # a gap (missing scrapes) is bridged: growth between the samples we have
    assert counter_increase([(0, 10.0), (600, 70.0)]) == 60.0


def test_multiwindow_rule_needs_both_windows():
    rules = [("page", 14.4, HOUR, 300)]
    hot_long = {HOUR: WindowCounts(800, 1000), 300: WindowCounts(99, 100)}  # burn 20 and 1
    res = evaluate_rules(rules, hot_long, 0.99)[0]
    assert res.burn_long == pytest.approx(20.0) and res.burn_short == pytest.approx(1.0)
    assert not res.firing
    both = {HOUR: WindowCounts(800, 1000), 300: WindowCounts(80, 100)}
    assert evaluate_rules(rules, both, 0.99)[0].firing
    # exactly at the threshold does not fire (strictly greater, as in the workbook's rules)
    edge = {HOUR: WindowCounts(856, 1000), 300: WindowCounts(856, 1000)}
    assert evaluate_rules(rules, edge, 0.99)[0].burn_long == pytest.approx(14.4)
    assert not evaluate_rules([("page", 14.4 + 1e-9, HOUR, 300)], edge, 0.99)[0].firing
    # a missing window never fires
    assert not evaluate_rules(rules, {HOUR: WindowCounts(0, 1000)}, 0.99)[0].firing


counts_st = st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)).map(
    lambda t: WindowCounts(good=min(t), total=max(t))
)
objective_st = st.floats(0.5, 0.99999)


@given(counts_st, objective_st)
def test_budget_never_exceeds_one(counts, objective):
    left = budget_remaining(counts, objective)
    assert left is not None and left <= 1.0


@given(st.integers(1, 10**6), st.one_of(st.just(0.0), st.floats(1e-6, 1)), st.floats(0.01, 100), objective_st)
def test_burn_rate_is_linear_in_the_error_ratio(total, ratio, factor, objective):
    scaled = min(ratio * factor, 1.0)
    a = burn_rate(WindowCounts(total * (1 - ratio), total), objective)
    b = burn_rate(WindowCounts(total * (1 - scaled), total), objective)
    assert a is not None and b is not None
    assert a == pytest.approx(ratio / (1 - objective), rel=1e-6, abs=1e-9)
    assert b * ratio == pytest.approx(a * scaled, rel=1e-6, abs=1e-12)


@given(counts_st, objective_st)
def test_budget_and_burn_rate_agree(counts, objective):
    # over the SLO window: budget left = 1 - burn rate
    assert budget_remaining(counts, objective) == pytest.approx(1 - burn_rate(counts, objective), abs=1e-9)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), max_size=30))
def test_counter_increase_of_a_monotonic_series_is_last_minus_first(deltas):
    values, acc = [], 0.0
    for d in deltas:
        acc += d
        values.append(acc)
    samples = list(enumerate(values))
    expected = values[-1] - values[0] if values else 0.0
    assert counter_increase(samples) == pytest.approx(expected, rel=1e-9, abs=1e-6)
    assert counter_increase(samples) >= 0 and not math.isnan(counter_increase(samples))
