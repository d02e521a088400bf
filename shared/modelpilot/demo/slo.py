"""The demo's SLO steps: prod serves healthily, a fixed v4 ships, then breaks; the SLO check rolls it back.

Request telemetry is written as JSON lines under ``<home>/telemetry/`` with the
simulated clock's timestamps and fed to the local store the way ``modelpilot
telemetry ingest`` does. A scheduler is simulated by running ``CheckSlos`` every
five minutes through the burst.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelpilot.demo.context import DemoContext
    from modelpilot.service.messagebus import Outcome

__all__ = ["step_incident_page", "step_slo_burst", "step_slo_healthy", "step_slo_release_v4"]

PER_MINUTE = 1000
CHECK_EVERY = timedelta(minutes=5)


def _feed(ctx: DemoContext, version: int, minutes: int, *, errors: int = 0, slow: int = 0) -> int:
    """Write ``minutes`` of prod request telemetry for ``version`` ending now+minutes; ingest it; move the clock."""
    store = ctx.bus.services.telemetry_ingest
    if store is None:  # pragma: no cover - the demo wires the local backend
        raise TypeError("the demo needs the local telemetry store")
    folder = ctx.home / "telemetry"
    folder.mkdir(parents=True, exist_ok=True)
    start = ctx.clock.now
    lines = []
    for minute in range(minutes):
        at = (start + timedelta(minutes=minute, seconds=30)).isoformat()
        base = {"type": "request", "model": "churn", "environment": "prod", "version": version, "time": at}
        for count, status, latency in (
            (PER_MINUTE - errors - slow, 200, 38.0),
            (errors, 503, 12.0),
            (slow, 200, 1400.0),
        ):
            if count:
                lines.append(json.dumps({**base, "count": count, "status": status, "latency_ms": latency}))
    path = folder / f"prod-v{version}-{start.strftime('%Y%m%dT%H%M%S')}.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store.ingest_file(str(path))
    ctx.clock.advance(minutes=minutes)
    return minutes * PER_MINUTE


def _check(ctx: DemoContext) -> Outcome:
    from modelpilot.domain.commands import CheckSlos

    return ctx.bus.handle(
        CheckSlos(
            actor="system:scheduler",
            model="churn",
            environment="prod",
            trigger=f"demo-slo-check-{ctx.clock.now.isoformat()}",
        )
    )


def _rates(row: dict[str, Any]) -> str:
    rates = row["burn_rates"]
    budget = row["budget_remaining"]
    return (
        f"{row['slo']} v{row['version']}: burn 5m={_fmt(rates.get('5m'))} 1h={_fmt(rates.get('1h'))} "
        f"6h={_fmt(rates.get('6h'))}; budget left {'-' if budget is None else f'{budget:.1%}'}"
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def step_slo_healthy(ctx: DemoContext) -> None:
    """Prod (v1 after the operator's rollback) serves healthily; the SLO check is green."""
    ctx.clock.advance(hours=1)
    served = _feed(ctx, 1, 180, errors=0, slow=1)
    outcome = _check(ctx)
    ctx.say(f"prod serves churn v1: {served} requests over 3h; SLO check: {outcome.data['alerts']} alerts")
    for row in outcome.data["slos"]:
        ctx.detail(_rates(row))


def step_slo_release_v4(ctx: DemoContext) -> None:
    """v4, a fixed retrain of v2, goes through every gate to prod."""
    from modelpilot.demo.context import approve, promote, register
    from modelpilot.demo.data import build_package

    build_package(ctx, 4, features=[0, 1, 2, 3], label_noise=0.0, steps=400)
    register(ctx, 4)
    promote(ctx, 4, "staging")
    ctx.clock.advance(hours=1, minutes=30)
    approve(ctx, 4, "prod")
    promote(ctx, 4, "prod")


def step_slo_burst(ctx: DemoContext) -> None:
    """v4 serves well, then errors and slow answers burst; the SLO check pages and prod rolls back."""
    from modelpilot.service.queries import alias_history

    _feed(ctx, 4, 30, slow=1)
    ctx.say("prod serves churn v4 for 30 min: healthy")
    burst_start = ctx.clock.now
    ctx.say("v4 starts failing: 25% of requests answer 503 and 8% take 1.4 s")
    rolled: Outcome | None = None
    alerts: list[Any] = []
    for _tick in range(6):
        _feed(ctx, 4, int(CHECK_EVERY.total_seconds() // 60), errors=250, slow=80)
        outcome = _check(ctx)
        alerts = [e for e in outcome.events if e.name == "SloBurnAlert"]
        if not alerts:
            ctx.say(f"SLO check: no page yet ({_rates(outcome.data['slos'][0])})")
            continue
        for alert in alerts:
            ctx.say(alert.summary())
        rolled = next((f for f in outcome.follow_ups if f.status == "rolled_back"), None)
        if rolled is not None:
            break
    if rolled is None:
        ctx.say("no automatic rollback happened")
        return
    minutes = int((ctx.clock.now - burst_start).total_seconds() // 60)
    ctx.say(f"automatic rollback: {rolled.message}, {minutes} min after the burst began", status=rolled.status)
    ctx.data["slo_rollback"] = {"from": rolled.data["from_version"], "to": rolled.data["version"]}
    record = [r for r in ctx.bus.services.registry.audit_records("churn") if r.action == "rollback"][-1]
    alert = record.evidence.get("alert", {})
    ctx.detail(f"audit #{record.seq} by {record.actor}: {record.reason}")
    ctx.detail(
        f"evidence: alert {alert.get('alert_id')} (burn {alert.get('burn_rate_long', 0):.1f} over "
        f"{alert.get('long_window')}, {alert.get('burn_rate_short', 0):.1f} over {alert.get('short_window')})"
    )
    history = alias_history(ctx.bus.services.registry, "churn", "prod")
    ctx.detail("prod history: " + " -> ".join(f"v{h['to_version']} ({h['action']})" for h in history))
    ctx.detail("notified: " + ", ".join(sorted({e.name for e in alerts} | {"ModelRolledBack"})))


def step_incident_page(ctx: DemoContext) -> None:
    """Write the automatic rollback's incident page (and review draft) and print where it is."""
    import tempfile
    from pathlib import Path

    from modelpilot.service.incident import incident_timeline
    from modelpilot.service.incident_render import duration_text, write_incident

    if "slo_rollback" not in ctx.data:
        return
    timeline = incident_timeline(ctx.bus.services, "churn", "prod")
    # a throwaway home is deleted when the demo ends: the page goes to a folder of its own that stays
    out = ctx.home / "incidents" if ctx.data.get("keep_home") else Path(tempfile.mkdtemp(prefix="modelpilot-incident-"))
    markdown, html = write_incident(timeline, out)
    m = timeline["measures"]
    ctx.data["incident_page"] = str(html)
    ctx.say(
        f"incident timeline: time to detect {duration_text(m['time_to_detect_seconds'])}, "
        f"time to roll back {duration_text(m['time_to_roll_back_seconds'])}",
        incident_page=str(html),
        review_draft=str(markdown),
    )
    ctx.detail(f"incident page: {html}")
    ctx.detail(f"review draft:  {markdown}")
