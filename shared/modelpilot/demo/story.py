"""``modelpilot demo``: the whole lifecycle, on real (tiny) models, in seconds.

The demo trains three logistic-regression models with numpy on synthetic churn
data, so their metrics are real, and tells the story as a timeline:

1. v1 registered, promoted dev → staging → prod (prod needs a second person's approval);
2. v2, better, promoted the same way;
3. v3, trained on noisy labels, is blocked by the no-regression gate, numbers shown;
4. an operator rolls prod back;
5. drift, SLO-driven rollback of v4, its incident page;
6. prod turns on canary releases: v4 goes out again in steps and the tick aborts it
   when its error ratio diverges from v1's;
7. ``audit verify`` passes.

It is a list of :class:`Step` functions sharing a :class:`DemoContext`, so later
features add steps (drift, SLO-driven rollback) without touching the others. The
demo's clock is simulated (it starts now and jumps over soak times), so it
finishes in seconds.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from modelpilot.demo.canary import step_canary
from modelpilot.demo.context import OPERATOR, DemoContext, SimulatedClock, approve, promote, register
from modelpilot.demo.data import build_package
from modelpilot.demo.drift import step_drift_batch
from modelpilot.demo.slo import step_incident_page, step_slo_burst, step_slo_healthy, step_slo_release_v4

__all__ = ["DEMO_POLICY", "STEPS", "run_demo"]

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

Step = Callable[[DemoContext], None]


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
    register(ctx, 1)
    promote(ctx, 1, "staging")
    promote(ctx, 1, "prod")
    ctx.clock.advance(hours=2)
    approve(ctx, 1, "prod")
    promote(ctx, 1, "prod")


def step_release_v2(ctx: DemoContext) -> None:
    """v2: better, goes all the way."""
    ctx.clock.advance(days=1)
    register(ctx, 2)
    promote(ctx, 2, "staging")
    ctx.clock.advance(hours=2)
    approve(ctx, 2, "prod")
    promote(ctx, 2, "prod")


def step_v3_blocked(ctx: DemoContext) -> None:
    """v3: regressed, blocked by the no-regression gate."""
    ctx.clock.advance(days=1)
    register(ctx, 3)
    outcome = promote(ctx, 3, "staging")
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
    step_incident_page,
    # canary steps: v4 as a canary in prod, aborted by the analysis
    step_canary,
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
    ctx.data["keep_home"] = not throwaway
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
