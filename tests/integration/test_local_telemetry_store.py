"""The local telemetry store against SQLite: ingest (validation, idempotency) and SLI counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from modelpilot.adapters.local.telemetry_store import SqliteTelemetryStore
from modelpilot.exceptions import DataError, InvalidInput
from modelpilot.policy.slo import SloSpec
from tests.support.slo import request_lines

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _spec(**sli) -> SloSpec:
    return SloSpec.model_validate(
        {"name": "s", "environment": "prod", "objective": 0.99, "sli": {"source": "local", **sli}}
    )


RATIO = _spec(kind="ratio", good={"query": "requests.ok"}, total={"query": "requests"})


@pytest.fixture
def store(tmp_path):
    store = SqliteTelemetryStore(tmp_path / "telemetry.db")
    store.ingest(request_lines("churn", "prod", 1, T0, 60, errors=2, slow=5))  # v1: 12:00-13:00
    store.ingest(request_lines("churn", "prod", 2, T0 + timedelta(hours=1), 30, errors=10))  # v2: 13:00-13:30
    return store


def test_ratio_counts_per_version_and_across_versions(store):
    end = T0 + timedelta(minutes=90)
    v2 = store.counts(RATIO.query("churn", version=2), end - timedelta(hours=1), end)
    assert (v2.good, v2.total) == (30 * 90.0, 30 * 100.0)
    both = store.counts(RATIO.query("churn", version=2, filter_version=False), T0, end)
    assert (both.good, both.total) == (60 * 98.0 + 30 * 90.0, 90 * 100.0)
    bad = _spec(kind="ratio", bad={"query": "requests.error"}, total={"query": "requests"})
    v1 = store.counts(bad.query("churn", version=1), T0, end)
    assert v1.total - v1.good == 120.0


def test_latency_threshold_counts_fast_requests(store):
    spec = _spec(kind="threshold", threshold_ms=300, good={"query": "requests.fast"}, total={"query": "requests"})
    v1 = store.counts(spec.query("churn", version=1), T0, T0 + timedelta(hours=1))
    assert (v1.good, v1.total) == (60 * 95.0, 6000.0)  # 5 a minute took 900 ms


def test_window_bounds_are_half_open(store):
    # samples sit at :30 of each minute; [12:00:30, 12:01:30) holds exactly one minute
    start = T0 + timedelta(seconds=30)
    one = store.counts(RATIO.query("churn", version=1), start, start + timedelta(minutes=1))
    assert one.total == 100.0


def test_empty_window_is_missing_data(store):
    counts = store.counts(RATIO.query("churn", version=1), T0 - timedelta(days=1), T0)
    assert (counts.points, counts.total) == (0, 0.0)


def test_ingest_is_idempotent(store, tmp_path):
    path = tmp_path / "again.jsonl"
    path.write_text("\n".join(request_lines("churn", "prod", 1, T0, 60, errors=2, slow=5)) + "\n")
    result = store.ingest_file(path)
    assert result["requests"] == 0 and result["duplicates"] == 180
    counts = store.counts(RATIO.query("churn", version=1), T0, T0 + timedelta(hours=1))
    assert counts.total == 6000.0
    # two identical lines in one file are two requests (occurrence is part of the key)
    line = json.dumps({"type": "request", "model": "m", "environment": "prod", "time": T0.isoformat(), "status": 200})
    assert store.ingest([line, line])["requests"] == 2


def test_bad_line_rejects_the_whole_file(store, tmp_path):
    good = request_lines("churn", "prod", 3, T0, 2)
    for bad, message in (
        ("{not json", "not JSON"),
        (json.dumps({"type": "request", "model": "churn", "environment": "prod"}), "time"),
        (
            json.dumps({"type": "request", "model": "churn", "environment": "prod", "time": "2026-03-01T12:00:00"}),
            "timezone",
        ),
        (json.dumps({"type": "feedback", "model": "churn", "environment": "prod", "time": T0.isoformat()}), "correct"),
    ):
        path = tmp_path / "bad.jsonl"
        path.write_text("\n".join([*good, bad]) + "\n")
        with pytest.raises(DataError, match=message) as info:
            store.ingest_file(path)
        assert f":{len(good) + 1}:" in str(info.value)
    counts = store.counts(RATIO.query("churn", version=3), T0, T0 + timedelta(hours=1))
    assert counts.points == 0  # nothing of the good lines was written
    with pytest.raises(DataError, match="cannot read"):
        store.ingest_file(tmp_path / "missing.jsonl")


def test_feedback_fraction_correct_and_timeslice_metrics(tmp_path):
    store = SqliteTelemetryStore(tmp_path / "t.db")
    lines = []
    for hour, (right, wrong, error) in enumerate([(9, 1, 0.5), (6, 4, 2.0), (8, 2, 1.0)]):
        at = (T0 + timedelta(hours=hour, minutes=10)).isoformat()
        base = {"type": "feedback", "model": "churn", "environment": "prod", "version": 1, "time": at}
        lines.append(json.dumps({**base, "prediction": 1, "label": 1, "count": right}))
        lines.append(json.dumps({**base, "prediction": 1, "label": 0, "count": wrong}))
        lines.append(json.dumps({**base, "model": "price", "prediction": 3.0, "label": 3.0 + error, "count": 4}))
    store.ingest(lines)
    end = T0 + timedelta(hours=3)
    correct = _spec(kind="quality", metric="correct", good={"query": "feedback.correct"}, total={"query": "feedback"})
    counts = store.counts(correct.query("churn", version=1), T0, end)
    assert (counts.good, counts.total) == (23.0, 30.0)
    accuracy = _spec(
        kind="quality", metric="accuracy", value={"query": "feedback.accuracy"}, op=">=", limit=0.75, timeslice="1h"
    )
    slices = store.counts(accuracy.query("churn", version=1), T0, end)
    # per hour: 9/10, 6/10, 8/10 → the first and the last reach 0.75
    assert (slices.good, slices.total) == (2.0, 3.0)
    mae = _spec(kind="quality", metric="mae", value={"query": "feedback.mae"}, op="<=", limit=1.0, timeslice="1h")
    maes = store.counts(mae.query("price", version=1), T0, end)
    assert (maes.good, maes.total) == (2.0, 3.0)  # hourly MAE 0.5, 2.0, 1.0


def test_unknown_series_is_invalid_input(tmp_path):
    store = SqliteTelemetryStore(tmp_path / "t.db")
    spec = _spec(kind="ratio", good={"query": "requests.happy"}, total={"query": "requests"})
    with pytest.raises(InvalidInput, match="unknown local telemetry series"):
        store.counts(spec.query("churn", version=1), T0, T0 + timedelta(hours=1))
