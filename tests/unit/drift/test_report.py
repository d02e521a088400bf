"""The drift report: JSON schema, ordering, data quality, and the self-contained HTML page."""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pytest

from modelpilot.domain.model import FeatureSpec
from modelpilot.drift.engine import compare_frames
from modelpilot.drift.frames import Categorical
from modelpilot.drift.html import render_html
from modelpilot.drift.report import DriftReport, report_id, report_schema
from modelpilot.exceptions import DataError
from modelpilot.policy.drift import DriftPolicy, QualityThresholds

RNG = np.random.default_rng(5)
N = 5000
SCHEMA = [
    FeatureSpec("age", "numeric", 0.0, 120.0),
    FeatureSpec("income", "numeric"),
    FeatureSpec("score", "numeric"),
    FeatureSpec("plan", "categorical", allowed_values=("a", "b", "c")),
]


def frames():
    ref = {
        "age": RNG.uniform(18, 90, N),
        "income": RNG.lognormal(10, 0.5, N),
        "score": RNG.normal(size=N),
        "plan": Categorical(RNG.integers(0, 3, N), ["a", "b", "c"]),
    }
    age = RNG.uniform(18, 90, N)
    age[:200] = -5.0  # out of the schema's bounds
    income = RNG.lognormal(10.6, 0.5, N)  # drifted
    income[:1000] = np.nan  # 20 % missing
    plan = np.array(RNG.choice(["a", "b", "c", "vip"], N, p=[0.3, 0.3, 0.3, 0.1]), dtype=object)
    score = np.array([str(v) for v in RNG.normal(size=N)], dtype=object)
    score[:100] = "oops"  # type errors
    cur = {"age": age, "income": income, "score": score, "plan": plan, "debug": np.zeros(N)}
    return ref, cur


@pytest.fixture(scope="module")
def report() -> DriftReport:
    ref, cur = frames()
    return compare_frames(
        ref,
        cur,
        SCHEMA,
        context={
            "report_id": "churn-prod-x",
            "model": "churn",
            "environment": "prod",
            "version": 3,
            "window": {"start": "s", "end": "e"},
        },
    )


def test_report_validates_against_its_schema(report):
    doc = json.loads(report.to_json())
    jsonschema.validate(doc, report_schema())
    assert doc["schema"] == "modelpilot.drift.report" and doc["schema_version"] == 1
    for item in doc["features"]:
        assert {"method", "threshold", "n_reference", "n_current", "pvalue", "pvalue_corrected"} <= set(item)


def test_features_sorted_by_drift(report):
    names = [f["name"] for f in report.features]
    assert report.drifted_features == names[: len(report.drifted_features)]
    assert "income" in report.drifted_features
    ratios = [f["effect"] / f["threshold"] for f in report.features if not f["drifted"]]
    assert ratios == sorted(ratios, reverse=True)


def test_data_quality_per_feature(report):
    age = report.feature("age")["quality"]
    assert age["out_of_bounds"] == 200 and age["bounds_source"] == "schema"
    income = report.feature("income")["quality"]
    assert income["missing_rate"] == pytest.approx(0.2) and income["breaches"]
    assert report.feature("income")["n_current"] == 4000
    score = report.feature("score")["quality"]
    assert score["type_errors"] == 100 and score["type_error_rate"] == pytest.approx(0.02)
    plan = report.feature("plan")["quality"]
    assert plan["unseen_rate"] == pytest.approx(0.1, abs=0.02) and set(plan["unseen_values"]) == {"vip"}
    quality = report.data["quality"]
    assert quality["extra_columns"] == ["debug"] and quality["missing_columns"] == []
    assert any(b.startswith("income: missing rate") for b in quality["breaches"])


def test_reference_range_bounds_when_the_schema_has_none():
    ref = {"x": RNG.uniform(0, 1, 1000)}
    cur = {"x": np.r_[RNG.uniform(0, 1, 950), np.full(30, 1.5), np.full(20, -0.5), ref["x"].min(), np.inf]}
    expected = int(np.sum((cur["x"] < ref["x"].min()) | (cur["x"] > ref["x"].max())))
    x = compare_frames(ref, cur).feature("x")["quality"]
    assert x["bounds_source"] == "reference range" and x["out_of_bounds"] == expected >= 51


def test_missing_columns_are_critical_by_default():
    ref = {"x": RNG.normal(size=500), "y": RNG.normal(size=500)}
    cur = {"x": RNG.normal(size=300)}
    r = compare_frames(ref, cur)
    assert r.data["quality"]["missing_columns"] == ["y"] and r.severity == "critical"
    assert r.feature("y")["quality"]["missing_rate"] == 1.0 and not r.feature("y")["drifted"]
    relaxed = compare_frames(
        ref, cur, policy=DriftPolicy(quality=QualityThresholds(missing_columns="ignore", max_missing_rate=1.0))
    )
    assert relaxed.severity == "none"


def test_html_is_self_contained_and_sorted(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "http://", "https://", "url(", "@import", "<link", "src=", "@font-face"):
        assert forbidden not in page.lower()
    assert page.count("<svg") == len(report.features)
    positions = [page.index(f"<h2>{name} ") for name in (f["name"] for f in report.features)]
    assert positions == sorted(positions)
    assert "DRIFTED" in page and "corrected p" in page


def test_html_escapes_feature_names_and_values():
    ref = {"<b>x</b>": RNG.normal(size=200), "c": np.array(["<script>"] * 200, dtype=object)}
    page = render_html(compare_frames(ref, ref))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<script>" not in page


def test_report_json_round_trip_and_ids():
    r = compare_frames({"x": RNG.normal(size=100)}, {"x": RNG.normal(size=100)})
    again = DriftReport.from_json(r.to_json())
    assert again.to_json() == r.to_json()
    a = report_id("churn", "prod", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")
    assert a == report_id("churn", "prod", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")
    assert a != report_id("churn", "staging", "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")
    assert re.fullmatch(r"churn-prod-20260102T000000-[0-9a-f]{12}", a)
    for bad in (b"[]", b"nope", b'{"schema": "modelpilot.drift.report", "schema_version": 2}'):
        with pytest.raises(DataError):
            DriftReport.from_json(bad)
