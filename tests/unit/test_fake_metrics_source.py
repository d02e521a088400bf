"""The in-memory MetricsSource refuses samples no real source could hold (its counts: the contract suite)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from modelpilot.exceptions import DataError
from modelpilot.ports import SliQuery
from modelpilot.testing import InMemoryMetricsSource
from tests.support.builders import T0

QUERY = SliQuery(source="local", kind="ratio", total="requests", good="requests.ok")


@pytest.mark.parametrize(
    ("at", "good", "total", "match"),
    [
        (datetime(2026, 1, 1), 1, 1, "no time zone"),
        (T0, 2, 1, "good <= total"),
        (T0, -1, 1, "good <= total"),
    ],
)
def test_bad_samples_are_refused_and_change_nothing(at, good, total, match):
    source = InMemoryMetricsSource()
    with pytest.raises(DataError, match=match):
        source.record("requests", at, good=good, total=total)
    assert source.counts(QUERY, T0 - timedelta(days=1), T0 + timedelta(days=1)).points == 0


def test_windows_are_half_open_and_selectors_separate():
    source = InMemoryMetricsSource()
    source.record("requests", T0, good=9, total=10)
    source.record("requests", T0 + timedelta(minutes=1), good=5, total=5)
    source.record("other", T0, good=0, total=100)
    counts = source.counts(QUERY, T0, T0 + timedelta(minutes=1))
    assert (counts.good, counts.total, counts.points) == (9, 10, 1)
