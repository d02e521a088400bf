"""The quality batch end to end on the local backend: captures + late labels → report, status, event, gate."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from modelpilot import telemetry
from modelpilot.bootstrap import bootstrap
from modelpilot.cli import main
from modelpilot.config import Settings
from modelpilot.domain.commands import PromoteModel, RegisterModel, RunQualityBatch
from modelpilot.exceptions import InvalidInput
from modelpilot.package.builder import write_package
from modelpilot.testing import FakeClock

POLICY = """\
version: 1
environments: [dev, staging, prod]
defaults:
  environments:
    staging:
      require_quality_healthy: true
models:
  churn:
    quality:
      window: 6h
      lookback: 12h
      label_delay: 1d
      slices: [plan]
      min_labelled_rows: 200
      min_coverage: 0.5
      thresholds:
        - {metric: accuracy, max_drop: 0.05}
        - {metric: roc_auc, min: 0.6}
      rollback: true
    attribution: {threshold: 0.95, min_rows: 100}
    slos:
      - name: accuracy
        environment: dev
        objective: 0.9
        window: 7d
        sli: {kind: quality, source: quality, metric: accuracy, op: ">=", limit: 0.7, timeslice: 6h}
      - name: correct
        environment: dev
        objective: 0.7
        window: 7d
        sli: {kind: quality, source: quality, metric: correct}
  hooked:
    quality: {window: 6h, min_labelled_rows: 10}
    attribution: {hook: "tests.integration.test_quality_batch:linear_hook", sample_rows: 300, min_rows: 100}
  species:
    quality: {task: multiclass, window: 1h, min_labelled_rows: 10, thresholds: [{metric: f1, min: 0.5}]}
  price:
    quality:
      task: regression
      window: 1h
      min_labelled_rows: 10
      thresholds:
        - {metric: mae, max_rise: 0.5, relative: true}
"""
FEATURES = [
    {"name": "x1", "type": "numeric"},
    {"name": "x2", "type": "numeric"},
    {"name": "plan", "type": "categorical"},
]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # the 6h window [06:00, 12:00) has just ended


def world(n, rng, *, shift=0.0, flip=False):
    x1 = rng.normal(shift, 1.0, n)
    x2 = rng.normal(0.0, 1.0, n)
    plan = rng.choice(["basic", "pro"], n)
    p = 1.0 / (1.0 + np.exp(-(1.5 * x1 - x2)))
    y = (rng.random(n) < (1.0 - p if flip else p)).astype(int)
    return {"x1": x1, "x2": x2, "plan": plan, "score": p, "label": y, "attribution.x1": 1.5 * x1, "attribution.x2": -x2}


def csv(columns: dict, names: list[str]) -> str:
    n = len(next(iter(columns.values())))
    return ",".join(names) + "\n" + "".join(",".join(str(columns[c][i]) for c in names) + "\n" for i in range(n))


@pytest.fixture
def env(tmp_path):
    otel = telemetry.configure_in_memory()
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    clock = FakeClock(T0)
    bus = bootstrap(Settings(backend="local", home=str(home)), clock=clock)
    rng = np.random.default_rng(7)

    def register(seed: str, reference: dict, name: str = "churn", features=FEATURES) -> int:
        package = tmp_path / f"pkg-{name}-{seed}"
        cols = [c for c in reference if c != "id"]
        write_package(
            package,
            files={"model.bin": seed.encode(), "reference.csv": csv(reference, cols).encode()},
            artifacts=["model.bin"],
            name=name,
            framework="test",
            metrics={"auc": 0.8},
            features=features,
            reference_data_uri="reference.csv",
        )
        return bus.handle(RegisterModel(package_uri=str(package), actor="alice@example.com")).data["version"]

    data = Path(bus.services.data_root)

    def write_hour(kind: str, hour: datetime, name: str, text: str, model: str = "churn", environment: str = "dev"):
        folder = data / kind / model / environment / hour.strftime("%Y/%m/%d/%H")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)

    return {
        "bus": bus,
        "clock": clock,
        "rng": rng,
        "register": register,
        "write": write_hour,
        "data": data,
        "home": home,
        "otel": otel,
    }


def capture_window(
    env, *, flip=False, shift=0.0, labelled=0.7, swap_attribution=False, start=datetime(2026, 3, 1, 6, tzinfo=UTC)
):
    """Six hours of captures and labels of ``labelled`` of them; returns the joined truth for checking."""
    truth_y, truth_score, truth_plan = [], [], []
    for h in range(6):
        hour = start + timedelta(hours=h)
        rows = world(500, env["rng"], shift=shift, flip=flip)
        ids = [f"{hour:%H}-{i}" for i in range(500)]
        rows["inference_id"] = ids
        if swap_attribution:
            rows["attribution.x1"], rows["attribution.x2"] = rows["attribution.x2"] * 0.1, rows["attribution.x1"] * 3
        env["write"](
            "captures",
            hour,
            "c.csv",
            csv(rows, ["inference_id", "x1", "x2", "plan", "score", "attribution.x1", "attribution.x2"]),
        )
        k = int(500 * labelled)
        env["write"](
            "feedback",
            hour,
            "labels.csv",
            csv({"inference_id": ids[:k], "label": rows["label"][:k]}, ["inference_id", "label"]) + "nobody-1,1\n",
        )  # a label for an inference id no capture has
        truth_y.extend(rows["label"][:k])
        truth_score.extend(rows["score"][:k])
        truth_plan.extend(rows["plan"][:k])
    return np.asarray(truth_y), np.asarray(truth_score), np.asarray(truth_plan)


@pytest.fixture
def churn(env):
    ref = world(20000, env["rng"])
    version = env["register"]("a", ref)
    env["bus"].handle(PromoteModel(model="churn", environment="dev", actor="alice@example.com"))
    return version


def run(env, **kw):
    return env["bus"].handle(RunQualityBatch(actor="system:test", model="churn", environment="dev", windows=1, **kw))


def test_window_joined_measured_and_estimated(env, churn):
    y, score, plan = capture_window(env)
    out = run(env)
    [w] = out.data["windows"]
    assert out.status == "ok", w["breaches"]
    assert w["predictions"] == 3000 and w["labelled"] == len(y) == 2100
    assert w["coverage"] == pytest.approx(0.7)
    pred = (score >= 0.5).astype(int)
    m = w["metrics"]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, score))
    doc = json.loads(Path(w["report_uri"]).read_text())
    assert doc["join"]["unknown_labels"] == 1 and doc["join"]["duplicate_labels"] == 5  # "nobody-1" in six files
    [group] = doc["versions"]
    basic = next(s for s in group["slices"] if s["value"] == "basic")
    mask = plan == "basic"
    assert basic["labelled"] == int(mask.sum())
    assert basic["metrics"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y[mask], score[mask]))
    # estimated before the labels, checked against them once they are here
    assert group["estimate_reliability"]["reliable"] is True
    for metric in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        check = group["estimate_check"][metric]
        assert check["within"] is True, (metric, check)
        assert group["estimated"][metric]["lower"] < group["estimated"][metric]["upper"]
    assert doc["attribution"]["ndcg"] == pytest.approx(1.0)
    assert doc["prediction_drift"]["features"][0]["name"] == "score"
    html = Path(w["html_uri"]).read_text()
    assert "Model quality" in html and "Feature attribution" in html and "estimated [band]" in html
    status = env["bus"].services.registry.get_monitor_status("churn", "dev", "quality")
    assert status is not None and status.state == "ok" and status.version == churn
    gauges = env["otel"].metric_points("modelpilot.quality.metric")
    assert any(a.get("metric") == "roc_auc" and a.get("model") == "churn" for a, _ in gauges)


def test_calibrated_shift_drifts_the_predictions_and_the_estimate_follows_it(env, churn):
    capture_window(env, shift=0.8)  # the inputs moved, P(label | inputs) did not: the model stays calibrated
    out = run(env)
    doc = json.loads(Path(out.data["windows"][0]["report_uri"]).read_text())
    assert [b["check"] for b in doc["breaches"]] == ["prediction_drift"]
    assert doc["prediction_drift"]["drifted"] == ["score"]
    group = doc["versions"][0]
    assert group["estimate_reliability"]["reliable"] is True
    for metric, check in group["estimate_check"].items():
        assert check["within"] is True, (metric, check)
    reference_accuracy = doc["reference"]["metrics"]["accuracy"]
    assert abs(group["estimated"]["accuracy"]["value"] - reference_accuracy) > 0.01  # it moved with the shift


def test_same_inputs_are_unchanged_and_a_new_label_file_gives_a_new_report(env, churn):
    capture_window(env, labelled=0.5)
    first = run(env).data["windows"][0]
    again = run(env)
    assert again.status == "unchanged" and again.data["windows"][0]["report_id"] == first["report_id"]
    hour = datetime(2026, 3, 1, 7, tzinfo=UTC)
    env["write"]("feedback", hour, "late.csv", "inference_id,label\n07-499,1\n07-498,0\n")
    late = run(env).data["windows"][0]
    assert late["report_id"] != first["report_id"] and late["labelled"] == first["labelled"] + 2


def test_empty_window_is_reported_not_failed(env, churn):
    out = run(env)
    [w] = out.data["windows"]
    assert w["predictions"] == 0 and w["labelled"] == 0 and w["coverage"] is None
    assert all(v is None for v in w["metrics"].values())
    assert w["severity"] == "none"


def test_concept_drift_breaches_alerts_blocks_promotion_and_flags_the_estimate(env, churn):
    capture_window(env, flip=True)
    out = run(env)
    assert out.status == "degraded"
    [event] = out.events
    assert event.name == "QualityDegraded" and event.severity == "critical" and event.version == churn
    doc = json.loads(Path(out.data["windows"][0]["report_uri"]).read_text())
    checks = {b["check"] for b in doc["breaches"]}
    assert {"metric", "estimate_unreliable"} <= checks
    group = doc["versions"][0]
    assert group["estimate_reliability"]["reliable"] is False
    assert group["estimate_check"]["accuracy"]["within"] is False
    status = env["bus"].services.registry.get_monitor_status("churn", "dev", "quality")
    assert status.state == "alert"
    blocked = env["bus"].handle(PromoteModel(model="churn", environment="staging", actor="alice@example.com"))
    assert blocked.status == "blocked"
    assert any(g["gate"] == "quality_healthy" and g["status"] == "failed" for g in blocked.data["gate_report"]["gates"])
    notified = env["home"] / "notifications.jsonl"
    assert "QualityDegraded" in notified.read_text()


def test_critical_breach_rolls_back_to_the_previous_version(env):
    bus, clock = env["bus"], env["clock"]
    clock.now = T0 - timedelta(hours=12)
    v1 = env["register"]("a", world(20000, env["rng"]))
    bus.handle(PromoteModel(model="churn", environment="dev", actor="alice@example.com"))
    clock.now = T0 - timedelta(hours=7)  # v2 goes live before the window [06:00, 12:00)
    v2 = env["register"]("b", world(20000, env["rng"]))
    bus.handle(PromoteModel(model="churn", environment="dev", version=v2, actor="alice@example.com"))
    clock.now = T0
    capture_window(env, flip=True)
    out = bus.handle(RunQualityBatch(actor="system:test", model="churn", environment="dev", windows=1))
    assert out.events[0].version == v2 and out.events[0].severity == "critical"
    follow = [f for f in out.follow_ups if f.status == "rolled_back"]
    assert follow, [f.to_dict() for f in out.follow_ups]
    assert bus.services.registry.get_alias("churn", "dev").version == v1
    # the window was v2's: run again now that v1 is live, nothing more rolls back and v1 keeps its status
    again = bus.handle(RunQualityBatch(actor="system:test", model="churn", environment="dev", windows=1))
    assert again.data["windows"][0]["version"] == v2 and again.events == []
    assert not [f for f in again.follow_ups if f.status == "rolled_back"]


def test_attribution_drift_is_a_warning_naming_the_movers(env, churn):
    capture_window(env, swap_attribution=True)
    out = run(env)
    doc = json.loads(Path(out.data["windows"][0]["report_uri"]).read_text())
    assert doc["attribution"]["ndcg"] < 0.95
    [item] = [b for b in doc["breaches"] if b["check"] == "attribution"]
    assert item["severity"] == "warning" and "x1" in item["message"]
    assert out.status == "degraded" and out.events[0].severity == "warning"
    html = Path(out.data["windows"][0]["html_uri"]).read_text()
    assert "gained" in html and "lost" in html


def test_low_coverage_counts_only_once_labels_are_due(env, churn):
    capture_window(env, labelled=0.2)
    early = run(env).data["windows"][0]
    assert not any("coverage" in b for b in early["breaches"])
    env["clock"].advance(2 * 86400)
    late = run(env, end=T0).data["windows"][0]
    assert any("coverage" in b for b in late["breaches"])


def test_regression_model(env):
    rng = env["rng"]
    features = [{"name": "size", "type": "numeric"}]
    size = rng.uniform(10, 100, 500)
    ref = {"size": size, "prediction": size * 2 + rng.normal(0, 1, 500), "label": size * 2}
    env["register"]("r", ref, name="price", features=features)
    env["bus"].handle(PromoteModel(model="price", environment="dev", actor="alice@example.com"))
    hour = datetime(2026, 3, 1, 11, tzinfo=UTC)
    size = rng.uniform(10, 100, 300)
    pred = size * 2 + rng.normal(0, 5, 300)
    truth = size * 2
    ids = [f"p{i}" for i in range(300)]
    env["write"](
        "captures",
        hour,
        "c.jsonl",
        "".join(json.dumps({"inference_id": i, "size": s, "prediction": p}) + "\n" for i, s, p in zip(ids, size, pred)),
        model="price",
    )
    env["write"](
        "feedback",
        hour,
        "l.jsonl",
        "".join(json.dumps({"inference_id": i, "label": t}) + "\n" for i, t in zip(ids, truth)),
        model="price",
    )
    out = env["bus"].handle(RunQualityBatch(actor="t", model="price", environment="dev", windows=1))
    [w] = out.data["windows"]
    assert w["metrics"]["mae"] == pytest.approx(skm.mean_absolute_error(truth, pred))
    assert w["metrics"]["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(truth, pred)))
    assert w["metrics"]["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, pred))
    assert w["severity"] == "critical"  # MAE rose far more than 50 % above the reference's


def test_versions_in_one_window_are_measured_apart(env, churn):
    hour = datetime(2026, 3, 1, 9, tzinfo=UTC)
    rows = world(400, env["rng"])
    rows["inference_id"] = [f"v-{i}" for i in range(400)]
    rows["model_version"] = [churn] * 200 + [99] * 200
    env["write"]("captures", hour, "c.csv", csv(rows, ["inference_id", "model_version", "x1", "x2", "plan", "score"]))
    env["write"](
        "feedback",
        hour,
        "l.csv",
        csv({"inference_id": rows["inference_id"], "label": rows["label"]}, ["inference_id", "label"]),
    )
    doc = json.loads(Path(run(env).data["windows"][0]["report_uri"]).read_text())
    assert {g["version"]: g["labelled"] for g in doc["versions"]} == {churn: 200, 99: 200}


def test_unknown_model_and_model_without_quality_policy(env, churn):
    from modelpilot.exceptions import UnknownModel

    with pytest.raises(UnknownModel):
        env["bus"].handle(RunQualityBatch(actor="t", model="nope"))
    env["register"]("o", world(300, env["rng"]), name="other")
    env["bus"].handle(PromoteModel(model="other", environment="dev", actor="alice@example.com"))
    with pytest.raises(InvalidInput, match="no quality block"):
        env["bus"].handle(RunQualityBatch(actor="t", model="other"))
    fleet = env["bus"].handle(RunQualityBatch(actor="t", windows=1))  # the fleet run skips models without a block
    assert {w["model"] for w in fleet.data["windows"]} == {"churn"}


def test_cli_quality_run_and_status(env, churn, capsys):
    capture_window(env)
    home = str(env["home"])
    code = main(
        [
            "quality",
            "run",
            "--home",
            home,
            "--model",
            "churn",
            "--env",
            "dev",
            "--windows",
            "1",
            "--end",
            "2026-03-01T12:00:00Z",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "ok" and data["windows"][0]["labelled"] == 2100
    assert main(["quality", "status", "--home", home, "--model", "churn"]) == 0
    out = capsys.readouterr().out
    assert "churn" in out and "ok" in out
    assert main(["quality", "run", "--home", home, "--windows", "0"]) == 2


def test_quality_slis_read_the_windows(env, churn):
    from modelpilot.service.slo.evaluation import evaluate_slos

    bus = env["bus"]
    y, _score, _ = capture_window(env, start=datetime(2026, 3, 1, 0, tzinfo=UTC))
    run(env, end=datetime(2026, 3, 1, 6, tzinfo=UTC))
    capture_window(env, flip=True)  # the next window is bad
    run(env)
    reports = {r.spec.name: r for r in evaluate_slos(bus.services, T0, "churn", "dev")}
    accuracy, correct = reports["accuracy"], reports["correct"]
    assert accuracy.error is None and correct.error is None
    # one of two 6h slices met accuracy >= 0.7: half the slices bad against an objective of 0.9
    assert accuracy.budget_remaining == pytest.approx(1 - 0.5 / 0.1)
    docs = [json.loads(p.read_text()) for p in sorted((env["data"] / "quality/churn/dev/windows").glob("*.json"))]
    good = sum(g["correct"] for d in docs for g in d["versions"])
    total = sum(g["labelled"] for d in docs for g in d["versions"])
    assert total == 2 * len(y)
    assert correct.budget_remaining == pytest.approx(1 - (1 - good / total) / 0.3)


def linear_hook(frame, *, model, version):
    """An attribution hook: the logistic model's exact contributions (what SHAP gives for a linear model)."""
    assert model == "hooked" and version == 1
    return {"x1": 1.5 * (frame["x1"] - 0.0), "x2": -(frame["x2"] - 0.0)}


def test_attribution_hook_explains_a_sample_when_the_capture_has_none(env):
    env["register"]("h", world(3000, env["rng"]), name="hooked")
    env["bus"].handle(PromoteModel(model="hooked", environment="dev", actor="alice@example.com"))
    hour = datetime(2026, 3, 1, 8, tzinfo=UTC)
    rows = world(2000, env["rng"])
    rows["inference_id"] = [f"h{i}" for i in range(2000)]
    env["write"]("captures", hour, "c.csv", csv(rows, ["inference_id", "x1", "x2", "plan", "score"]), model="hooked")
    out = env["bus"].handle(RunQualityBatch(actor="t", model="hooked", environment="dev", windows=1))
    doc = json.loads(Path(out.data["windows"][0]["report_uri"]).read_text())
    section = doc["attribution"]
    assert section["rows"] == 300 and section["notes"] == []
    assert section["ndcg"] == pytest.approx(1.0)
    assert section["current"]["x1"] == pytest.approx(section["reference"]["x1"], rel=0.15)


def test_multiclass_model(env):
    rng = env["rng"]
    classes = np.array(["cat", "dog", "eel"])
    truth = classes[rng.integers(0, 3, 400)]
    pred = np.where(rng.random(400) < 0.8, truth, classes[rng.integers(0, 3, 400)])
    ref = {"size": rng.random(400), "prediction": pred, "label": truth}
    env["register"]("m", ref, name="species", features=[{"name": "size", "type": "numeric"}])
    env["bus"].handle(PromoteModel(model="species", environment="dev", actor="alice@example.com"))
    hour = datetime(2026, 3, 1, 11, tzinfo=UTC)
    truth = classes[rng.integers(0, 3, 300)]
    pred = np.where(rng.random(300) < 0.6, truth, classes[rng.integers(0, 3, 300)])
    ids = [f"s{i}" for i in range(300)]
    env["write"](
        "captures",
        hour,
        "c.csv",
        csv({"inference_id": ids, "size": rng.random(300), "prediction": pred}, ["inference_id", "size", "prediction"]),
        model="species",
    )
    env["write"](
        "feedback",
        hour,
        "l.csv",
        csv({"inference_id": ids[:250], "label": truth[:250]}, ["inference_id", "label"]),
        model="species",
    )
    out = env["bus"].handle(RunQualityBatch(actor="t", model="species", environment="dev", windows=1))
    [w] = out.data["windows"]
    y, p = truth[:250], pred[:250]
    assert w["labelled"] == 250
    assert w["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert w["metrics"]["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert "roc_auc" not in w["metrics"]  # needs every class's score: not measured for multiclass models
    doc = json.loads(Path(w["report_uri"]).read_text())
    assert doc["prediction_drift"]["features"][0]["kind"] == "categorical"


def test_corrupt_feedback_fails_the_window_and_changes_nothing(env, churn):
    from modelpilot.exceptions import DataError

    capture_window(env)
    hour = datetime(2026, 3, 1, 9, tzinfo=UTC)
    env["write"]("feedback", hour, "junk.jsonl", "not json\n" * 5000)
    with pytest.raises(DataError, match="corrupt"):
        run(env)
    assert not list((env["data"] / "quality").rglob("*.json"))
    assert env["bus"].services.registry.get_monitor_status("churn", "dev", "quality") is None
