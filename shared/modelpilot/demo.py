"""``modelpilot demo``: the whole lifecycle, on real (tiny) models, in seconds.

The demo trains three logistic-regression models with numpy on synthetic churn
data, so their metrics are real, and tells the story as a timeline:

1. v1 registered, promoted dev → staging → prod (prod needs a second person's approval);
2. v2, better, promoted the same way;
3. v3, trained on noisy labels, is blocked by the no-regression gate, numbers shown;
4. an operator rolls prod back;
5. ``audit verify`` passes.

It is a list of :class:`Step` functions sharing a :class:`DemoContext`, so later
features add steps (drift, SLO-driven rollback) without touching the others. The
demo's clock is simulated (it starts now and jumps over soak times), so it
finishes in seconds.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.demo_drift import step_drift_batch
from modelpilot.demo_slo import step_slo_burst, step_slo_healthy, step_slo_release_v4
from modelpilot.domain.model import utcnow

if TYPE_CHECKING:
    import numpy as np

    from modelpilot.service.messagebus import MessageBus, Outcome

__all__ = ["DEMO_POLICY", "STEPS", "DemoContext", "run_demo", "train_logreg"]

DEMO_POLICY = """\
version: 1
environments: [dev, staging, prod]
defaults:
  environments:
    dev:
      thresholds: ["auc >= 0.60"]
    staging:
      thresholds: ["auc >= 0.65"]
      no_regression:
        - {metric: auc, greater_is_better: true, min_absolute_change: -0.01}
    prod:
      soak: 1h
      approvals: 1
      four_eyes: true
      no_regression:
        - {metric: auc, greater_is_better: true, min_absolute_change: -0.01}
      require_no_drift_alert: true
      require_slo_healthy: true
models:
  churn:
    slos:
      - name: availability
        environment: prod
        description: predictions answered without a server error
        objective: 0.995
        window: 30d
        sli: {kind: ratio, source: local, good: {query: requests.ok}, total: {query: requests}}
      - name: latency
        environment: prod
        description: predictions answered within 250 ms
        objective: 0.99
        window: 30d
        sli: {kind: threshold, source: local, threshold_ms: 250, good: {query: requests.fast}, total: {query: requests}}
    rollback:
      prod: {on_slo_page: true, cooldown: 1h}
"""

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "usage_gb"]
CATEGORICAL = {"plan": ["basic", "standard", "pro"], "region": ["eu", "us", "apac"]}
ML_ENGINEER = "alice@example.com"
APPROVER = "bob@example.com"
OPERATOR = "carol@example.com"


class SimulatedClock:
    """The demo's clock: starts at the real time, moves only when the story says so."""

    def __init__(self) -> None:
        self.start = utcnow().replace(microsecond=0)
        self.now = self.start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move forward by ``timedelta(**delta)``."""
        self.now += timedelta(**delta)


@dataclass
class DemoContext:
    """State shared by the demo's steps."""

    home: Path
    bus: MessageBus
    clock: SimulatedClock
    as_json: bool = False
    timeline: list[dict[str, Any]] = field(default_factory=list)
    packages: dict[int, Path] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str, **details: Any) -> None:
        """Add a line to the printed timeline."""
        offset = self.clock.now - self.clock.start
        minutes = int(offset.total_seconds() // 60)
        days, minutes = divmod(minutes, 1440)
        stamp = f"day {days + 1} {minutes // 60:02d}:{minutes % 60:02d}"
        self.timeline.append({"at": self.clock.now.isoformat(), "offset": stamp, "event": text, **details})
        if not self.as_json:
            print(f"[{stamp}] {text}", flush=True)

    def detail(self, text: str) -> None:
        """Print an indented detail line under the last timeline entry."""
        if not self.as_json:
            for line in text.splitlines():
                print(f"         {line}", flush=True)

    def outcome(self, outcome: Outcome) -> Outcome:
        """Report a handler outcome on the timeline."""
        self.say(outcome.message, status=outcome.status)
        if outcome.status == "blocked":
            for gate in outcome.data["gate_report"]["gates"]:
                if gate["status"] == "failed":
                    self.detail(f"FAIL {gate['gate']}: {gate['reason']}")
        return outcome


# -- tiny real models ---------------------------------------------------------------
def synthetic_churn(
    n: int, rng: np.random.Generator, *, shift: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (numeric features, labels, categorical columns) of a synthetic churn data set."""
    import numpy as np

    shift = shift or {}
    tenure = rng.gamma(2.0, 12.0, n) + shift.get("tenure_months", 0.0)
    charges = rng.normal(70, 20, n) + shift.get("monthly_charges", 0.0)
    calls = rng.poisson(1.5 + shift.get("support_calls", 0.0), n).astype(float)
    usage = rng.lognormal(3.0, 0.5, n) + shift.get("usage_gb", 0.0)
    x = np.column_stack([tenure, charges, calls, usage])
    logit = -0.06 * tenure + 0.03 * charges + 0.7 * calls - 0.01 * usage - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    cats = {name: rng.choice(values, n) for name, values in CATEGORICAL.items()}
    return x, y, cats


def train_logreg(
    x: np.ndarray, y: np.ndarray, *, steps: int = 300, lr: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit logistic regression by gradient descent on standardised features; return (w, mean, std)."""
    import numpy as np

    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.column_stack([np.ones(len(x)), (x - mean) / std])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        w -= lr * z.T @ (p - y) / len(y)
    return w, mean, std


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Return the ROC AUC (Mann-Whitney U with average ranks for ties)."""
    import numpy as np

    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def build_package(ctx: DemoContext, version: int, *, features: list[int], label_noise: float, steps: int) -> Path:
    """Train one model and write its package (weights, reference data, manifest)."""
    import time

    import numpy as np

    from modelpilot.package_builder import write_package

    rng = np.random.default_rng(100 + version)
    x, y, cats = synthetic_churn(6000, rng)
    train, test = slice(0, 4000), slice(4000, 6000)
    y_train = y[train].copy()
    flip = rng.random(len(y_train)) < label_noise
    y_train[flip] = 1 - y_train[flip]
    t0 = time.perf_counter()
    w, mean, std = train_logreg(x[train][:, features], y_train, steps=steps)
    z = np.column_stack([np.ones(2000), (x[test][:, features] - mean) / std])
    scores = 1 / (1 + np.exp(-z @ w))
    latency_ms = (time.perf_counter() - t0) * 1000 / steps
    metrics = {
        "auc": round(auc(scores, y[test]), 4),
        "accuracy": round(float(((scores > 0.5) == (y[test] == 1)).mean()), 4),
        "latency_p95_ms": round(latency_ms, 3),
    }
    weights = io.BytesIO()
    np.savez(weights, w=w, mean=mean, std=std, features=np.array(features))
    reference = io.StringIO()
    reference.write(",".join(FEATURES + list(CATEGORICAL)) + "\n")
    for row in range(2000):
        nums = ",".join(f"{v:.4f}" for v in x[test][row])
        reference.write(nums + "," + ",".join(str(cats[c][4000 + row]) for c in CATEGORICAL) + "\n")
    root = ctx.home / "packages" / f"churn-v{version}"
    write_package(
        root,
        files={"model.npz": weights.getvalue(), "reference.csv": reference.getvalue().encode()},
        artifacts=["model.npz"],
        name="churn",
        framework="numpy-logreg",
        metrics=metrics,
        lineage={"run_id": f"demo-run-{version}", "code_revision": "demo", "training_data_uri": "synthetic://churn"},
        features=[
            {"name": "tenure_months", "type": "numeric", "minimum": 0},
            {"name": "monthly_charges", "type": "numeric"},
            {"name": "support_calls", "type": "numeric", "minimum": 0},
            {"name": "usage_gb", "type": "numeric", "minimum": 0},
            {"name": "plan", "type": "categorical", "allowed_values": CATEGORICAL["plan"]},
            {"name": "region", "type": "categorical", "allowed_values": CATEGORICAL["region"]},
        ],
        reference_data_uri="reference.csv",
    )
    ctx.packages[version] = root
    ctx.data.setdefault("metrics", {})[version] = metrics
    return root


# -- steps --------------------------------------------------------------------------
Step = Callable[[DemoContext], None]


def _register(ctx: DemoContext, version: int) -> None:
    from modelpilot.domain.commands import RegisterModel

    outcome = ctx.bus.handle(
        RegisterModel(
            package_uri=str(ctx.packages[version]),
            actor=ML_ENGINEER,
            auto_promote=True,
            trigger=f"demo-upload-{version}",
        )
    )
    m = ctx.data["metrics"][version]
    ctx.say(f"{ML_ENGINEER} uploads churn v{outcome.data['version']} (auc={m['auc']}, accuracy={m['accuracy']})")
    promo = outcome.data.get("promotion", {})
    if promo:
        ctx.say(promo["message"], status=promo["status"])


def _promote(ctx: DemoContext, version: int, env: str) -> Outcome:
    from modelpilot.domain.commands import PromoteModel

    return ctx.outcome(
        ctx.bus.handle(
            PromoteModel(model="churn", environment=env, actor=ML_ENGINEER, version=version, reason="release train")
        )
    )


def _approve(ctx: DemoContext, version: int, env: str) -> None:
    from modelpilot.domain.commands import ApproveModel

    ctx.outcome(
        ctx.bus.handle(
            ApproveModel(
                model="churn",
                version=version,
                environment=env,
                approver=APPROVER,
                comment="reviewed metrics and lineage",
            )
        )
    )


def step_train(ctx: DemoContext) -> None:
    """Train the three models and write their packages."""
    build_package(ctx, 1, features=[0, 1], label_noise=0.0, steps=200)
    build_package(ctx, 2, features=[0, 1, 2, 3], label_noise=0.0, steps=400)
    build_package(ctx, 3, features=[0, 3], label_noise=0.0, steps=400)
    ctx.say(
        "trained 3 logistic-regression models on synthetic churn data: "
        + ", ".join(f"v{v} auc={m['auc']}" for v, m in sorted(ctx.data["metrics"].items()))
    )


def step_release_v1(ctx: DemoContext) -> None:
    """v1: upload, staging, prod (blocked until approved and soaked)."""
    _register(ctx, 1)
    _promote(ctx, 1, "staging")
    _promote(ctx, 1, "prod")
    ctx.clock.advance(hours=2)
    _approve(ctx, 1, "prod")
    _promote(ctx, 1, "prod")


def step_release_v2(ctx: DemoContext) -> None:
    """v2: better, goes all the way."""
    ctx.clock.advance(days=1)
    _register(ctx, 2)
    _promote(ctx, 2, "staging")
    ctx.clock.advance(hours=2)
    _approve(ctx, 2, "prod")
    _promote(ctx, 2, "prod")


def step_v3_blocked(ctx: DemoContext) -> None:
    """v3: regressed, blocked by the no-regression gate."""
    ctx.clock.advance(days=1)
    _register(ctx, 3)
    outcome = _promote(ctx, 3, "staging")
    ctx.data["v3_blocked"] = outcome.status == "blocked"


def step_operator_rollback(ctx: DemoContext) -> None:
    """An operator rolls prod back by hand."""
    from modelpilot.domain.commands import RollbackModel

    ctx.clock.advance(hours=3)
    ctx.outcome(
        ctx.bus.handle(
            RollbackModel(
                model="churn",
                environment="prod",
                actor=OPERATOR,
                reason="customer complaints after v2 release",
                trigger="demo-rollback",
            )
        )
    )


def step_audit(ctx: DemoContext) -> None:
    """Verify the audit chain."""
    from modelpilot.service.queries import verify_audit

    verdicts = verify_audit(ctx.bus.services.registry)
    ok = all(v.ok for v in verdicts)
    ctx.data["audit_ok"] = ok
    records = sum(v.records for v in verdicts)
    ctx.say(f"audit verify: {'PASSED' if ok else 'FAILED'} ({records} hash-chained records)")


STEPS: list[Step] = [
    step_train,
    step_release_v1,
    step_release_v2,
    step_v3_blocked,
    # drift steps go here (prod traffic drifts on v2)
    step_drift_batch,
    step_operator_rollback,
    # SLO steps go here (error burst, automatic rollback)
    step_slo_healthy,
    step_slo_release_v4,
    step_slo_burst,
    step_audit,
]


def run_demo(home: str | None = None, *, as_json: bool = False, steps: list[Step] | None = None) -> int:
    """Run the demo; keep its state in ``home`` when given, else in a throwaway folder."""
    from modelpilot.bootstrap import bootstrap
    from modelpilot.config import Settings

    throwaway = home is None
    root = Path(tempfile.mkdtemp(prefix="modelpilot-demo-")) if home is None else Path(home)
    root.mkdir(parents=True, exist_ok=True)
    policy_path = root / "modelpilot.yaml"
    policy_path.write_text(DEMO_POLICY, encoding="utf-8")
    clock = SimulatedClock()
    bus = bootstrap(Settings(backend="local", home=str(root), policy=str(policy_path)), clock=clock)
    ctx = DemoContext(home=root, bus=bus, clock=clock, as_json=as_json)
    if not as_json:
        print(
            f"ModelPilot demo: home {root}{' (throwaway)' if throwaway else ''}; simulated clock from "
            f"{clock.start.isoformat()}\n",
            flush=True,
        )
    try:
        for step in steps or STEPS:
            step(ctx)
    finally:
        if throwaway:
            shutil.rmtree(root, ignore_errors=True)
    ok = bool(ctx.data.get("audit_ok"))
    if as_json:
        print(json.dumps({"home": None if throwaway else str(root), "timeline": ctx.timeline, "ok": ok}, indent=2))
    else:
        print("\ndemo finished." + ("" if throwaway else f" Inspect it: modelpilot status --home {root}"))
    return 0 if ok else 1
