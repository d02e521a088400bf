"""The demo's drift steps: prod traffic drifts on two features, the batch flags them.

Captures are written the way a serving layer would: CSV files under the
time-partitioned prefix ``<data_root>/captures/churn/prod/YYYY/MM/DD/HH/`` for
the last hours of the simulated clock (one with a corrupt line, to show it is
counted and reported, not fatal).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelpilot.demo.context import DemoContext

__all__ = ["step_drift_batch", "write_captures"]

HOURS = 6
ROWS_PER_HOUR = 1500
SHIFT = {"monthly_charges": 18.0, "support_calls": 1.2}


def write_captures(ctx: DemoContext, environment: str, *, shift: dict[str, float], hours: int = HOURS) -> int:
    """Write ``hours`` hourly CSV capture files ending at the demo clock; return the rows written."""
    import numpy as np

    from modelpilot.demo.data import CATEGORICAL, FEATURES, synthetic_churn

    store = ctx.bus.services.artifacts
    root = ctx.bus.services.data_root
    rng = np.random.default_rng(7)
    end = ctx.clock.now.replace(minute=0, second=0, microsecond=0)
    rows = 0
    for back in range(hours, 0, -1):
        hour = end - timedelta(hours=back)
        x, _, cats = synthetic_churn(ROWS_PER_HOUR, rng, shift=shift)
        lines = [",".join(FEATURES + list(CATEGORICAL))]
        lines += [
            ",".join(f"{v:.4f}" for v in x[i]) + "," + ",".join(str(cats[c][i]) for c in CATEGORICAL)
            for i in range(ROWS_PER_HOUR)
        ]
        if back == 1:
            lines.append("12.0,not-a-row")
        prefix = store.join(
            root,
            "captures",
            "churn",
            environment,
            hour.strftime("%Y"),
            hour.strftime("%m"),
            hour.strftime("%d"),
            hour.strftime("%H"),
        )
        store.write_bytes(store.join(prefix, "part-0000.csv"), ("\n".join(lines) + "\n").encode())
        rows += ROWS_PER_HOUR
    return rows


def step_drift_batch(ctx: DemoContext) -> None:
    """v2 is live in prod; its traffic drifts on two features; the scheduled batch flags them."""
    from modelpilot.domain.commands import RunDriftBatch

    ctx.clock.advance(hours=1)
    rows = write_captures(ctx, "prod", shift=SHIFT)
    ctx.say(
        f"prod traffic for churn v2 captured: {rows} rows over {HOURS}h; monthly_charges and support_calls have shifted"
    )
    outcome = ctx.bus.handle(
        RunDriftBatch(
            actor="system:drift-batch",
            model="churn",
            environment="prod",
            window_seconds=HOURS * 3600,
            trigger="demo-drift-batch",
        )
    )
    report = outcome.data["reports"][0]
    ctx.data["drift_report"] = report
    ctx.say(
        f"drift batch: {report['severity']} drift on churn prod v{report['version']}: "
        f"{', '.join(report['drifted_features']) or 'none'}",
        status=outcome.status,
    )
    ctx.detail(f"HTML report: {report['html_uri']}")
    for event in outcome.events:
        ctx.detail(f"event {event.name}: {event.summary()}")
