"""The demo's canary steps: prod turns on canary releases, v4 goes out in steps and is aborted automatically.

The platform team adds a ``canary`` block to prod's policy (the demo rewrites the policy file and
starts a fresh bus over the same home, as a redeploy would). v4 is promoted again: the gates
pass and a canary starts at 10 %. Prod traffic is split by the canary's weights and fed to the
local telemetry store per version; the scheduler's tick (``AdvanceCanaries``) runs every ten
minutes. Two healthy steps advance v4 to 50 %; then v4's error ratio diverges from v1's and the
tick aborts the canary, printing the analysis that decided it.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelpilot.demo.context import DemoContext
    from modelpilot.service.messagebus import Outcome

__all__ = ["CANARY_BLOCK", "step_canary"]

PER_MINUTE = 1000
TICK_EVERY = 10  # minutes, the canary's interval
#: churn's prod canary the platform team turns on (indented to sit under ``models.churn``)
CANARY_BLOCK = """\
    environments:
      prod:
        canary:
          steps: [10, 25, 50, 100]
          interval: 10m
          min_samples: 500
          failure_limit: 0
          analysis:
            - {name: error-ratio, threshold: 0.01}
            - {name: latency, slo: latency, threshold: 0.02}
"""


def _enable_canary(ctx: DemoContext) -> None:
    """Add the canary block to prod's policy and rebuild the bus over the same home."""
    from modelpilot.bootstrap import bootstrap
    from modelpilot.config import Settings

    path = ctx.home / "modelpilot.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = "models:\n  churn:\n"
    path.write_text(text.replace(anchor, anchor + CANARY_BLOCK, 1), encoding="utf-8")
    settings = Settings(backend="local", home=str(ctx.home), policy=str(path))
    ctx.bus = bootstrap(settings, clock=ctx.clock)


def _feed(ctx: DemoContext, stable: int, candidate: int, weight: int, minutes: int, *, errors: float = 0.0) -> None:
    """``minutes`` of prod traffic split ``100 - weight`` / ``weight``; ``errors`` is the candidate's 5xx share."""
    store = ctx.bus.services.telemetry_ingest
    if store is None:  # pragma: no cover - the demo wires the local backend
        raise TypeError("the demo needs the local telemetry store")
    lines = []
    for minute in range(minutes):
        at = (ctx.clock.now + timedelta(minutes=minute, seconds=30)).isoformat()
        for version, share, bad_share in ((stable, 100 - weight, 0.0), (candidate, weight, errors)):
            total = PER_MINUTE * share // 100
            bad = int(total * bad_share)
            base = {"type": "request", "model": "churn", "environment": "prod", "version": version, "time": at}
            for count, status, latency in ((total - bad, 200, 38.0), (bad, 503, 12.0)):
                if count:
                    lines.append(json.dumps({**base, "count": count, "status": status, "latency_ms": latency}))
    folder = ctx.home / "telemetry"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"prod-canary-{ctx.clock.now.strftime('%Y%m%dT%H%M%S')}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store.ingest_file(str(path))
    ctx.clock.advance(minutes=minutes)


def _tick(ctx: DemoContext) -> Outcome:
    from modelpilot.domain.commands import AdvanceCanaries

    return ctx.bus.handle(
        AdvanceCanaries(actor="system:scheduler", trigger=f"demo-canary-tick-{ctx.clock.now.isoformat()}")
    )


def _comparisons(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list((result.get("analysis") or {}).get("comparisons", []))


def step_canary(ctx: DemoContext) -> None:
    """v4 goes to prod as a canary: two healthy steps, then its errors diverge and the tick aborts it."""
    from modelpilot.demo.context import promote

    _enable_canary(ctx)
    ctx.say("the platform team turns on canary releases for prod: 10% -> 25% -> 50% -> 100%, analysis every 10 min")
    ctx.clock.advance(hours=1)
    started = promote(ctx, 4, "prod")
    if started.status != "canary_started":
        return
    canary = started.data["canary"]
    stable, candidate = canary["stable_version"], canary["candidate_version"]
    weight, errors = canary["weight"], 0.0
    ctx.data["canary"] = {"steps": [weight]}
    for tick in range(4):
        if tick == 2:
            errors = 0.08
            ctx.say(f"v{candidate} starts failing at {weight}%: 8% of its requests answer 503")
        _feed(ctx, stable, candidate, weight, TICK_EVERY, errors=errors)
        outcome = _tick(ctx)
        if not outcome.data["canaries"]:
            continue
        result = outcome.data["canaries"][0]
        ctx.say(f"canary tick: {result['message']}", status=result["status"])
        state = result["canary"]
        if result["status"] == "advanced":
            weight = state["weight"]
            ctx.data["canary"]["steps"].append(weight)
            continue
        if result["status"] == "aborted":
            ctx.data["canary"]["aborted"] = True
            ctx.data["canary"]["analysis"] = _comparisons(result)
            for comparison in _comparisons(result):
                ctx.detail(
                    f"{comparison['metric']}: candidate v{candidate} {_pct(comparison['candidate'])} vs stable "
                    f"v{stable} {_pct(comparison['stable'])} over {comparison['samples']} requests each "
                    f"(allowed: +{comparison['threshold']:.0%}) -> {'FAIL' if comparison['passed'] is False else 'ok'}"
                )
            ctx.detail(f"prod serves v{stable} at 100% again (serving manifest: {result.get('manifest')})")
            return


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"
