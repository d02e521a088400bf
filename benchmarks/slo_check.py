"""SLO engine throughput: a full ``CheckSlos`` over many SLOs, and the burn-rate maths alone.

Builds a throwaway local backend with ``--models`` models, each with two SLOs in
prod (availability and latency), and ``--days`` of per-minute request telemetry
per model in the SQLite telemetry store; then times ``CheckSlos`` over all of them
(8 windows per SLO: the SLO window and the seven workbook windows) with
``time.perf_counter``, best of ``--runs``. Then, on a real clock, one check that
pages and rolls back: its wall time and the recorded alert-to-alias-moved time
(measured from the check's evaluation instant). Also times ``counter_increase`` over a
long series and ``evaluate_rules`` (pure Python).

Usage: ``python benchmarks/slo_check.py [--models 20] [--days 7] [--runs 3]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from modelpilot.bootstrap import bootstrap
from modelpilot.config import Settings
from modelpilot.domain.commands import CheckSlos, PromoteModel, RegisterModel
from modelpilot.domain.slo import WindowCounts, counter_increase, evaluate_rules
from modelpilot.package.builder import write_package
from modelpilot.testing import FakeClock

SLOS = """\
      - {{name: availability, environment: prod, objective: 0.995,
         sli: {{kind: ratio, source: local, good: {{query: requests.ok}}, total: {{query: requests}}}}}}
      - {{name: latency, environment: prod, objective: 0.99,
         sli: {{kind: threshold, source: local, threshold_ms: 250, good: {{query: requests.fast}},
               total: {{query: requests}}}}}}
"""


def build(root: Path, models: int, days: int) -> tuple[object, FakeClock, int]:
    policy = "version: 1\nenvironments: [prod]\nmodels:\n" + "".join(
        f"  m{i}:\n    slos:\n{SLOS.format()}" for i in range(models)
    )
    (root / "modelpilot.yaml").write_text(policy)
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    bus = bootstrap(
        Settings(backend="local", home=str(root / "home"), policy=str(root / "modelpilot.yaml")), clock=clock
    )
    rows = 0
    store = bus.services.metrics_sources["local"]
    for i in range(models):
        write_package(
            root / f"p{i}",
            files={"m.bin": b"w"},
            name=f"m{i}",
            framework="f",
            metrics={"auc": 0.9},
            lineage={},
            features=[{"name": "x", "type": "numeric"}],
        )
        bus.handle(RegisterModel(package_uri=str(root / f"p{i}"), actor="bench"))
        bus.handle(PromoteModel(model=f"m{i}", environment="prod", actor="bench", version=1))
        lines = []
        for minute in range(days * 1440):
            at = (clock.now + timedelta(minutes=minute)).isoformat()
            lines.append(
                json.dumps(
                    {
                        "type": "request",
                        "model": f"m{i}",
                        "environment": "prod",
                        "version": 1,
                        "time": at,
                        "count": 100,
                        "status": 200,
                        "latency_ms": 40,
                    }
                )
            )
        rows += store.ingest(lines)["requests"]
    clock.advance(days * 86400)
    return bus, clock, rows


def rollback_latency(root: Path) -> tuple[float, float]:
    """Return (wall seconds of the CheckSlos that pages and rolls back, alert-to-alias-moved seconds)."""
    from modelpilot.domain.model import utcnow

    policy = (
        "version: 1\nenvironments: [prod]\nmodels:\n  m0:\n    slos:\n"
        + SLOS.format()
        + "    rollback:\n      prod: {on_slo_page: true}\n"
    )
    (root / "p.yaml").write_text(policy)
    bus = bootstrap(Settings(backend="local", home=str(root / "rb"), policy=str(root / "p.yaml")))
    for v in (1, 2):
        write_package(
            root / f"r{v}",
            files={"m.bin": f"w{v}".encode()},
            name="m0",
            framework="f",
            metrics={"auc": 0.9},
            lineage={},
            features=[{"name": "x", "type": "numeric"}],
        )
        bus.handle(RegisterModel(package_uri=str(root / f"r{v}"), actor="bench"))
        bus.handle(PromoteModel(model="m0", environment="prod", actor="bench", version=v))
    now = utcnow()
    lines = [
        json.dumps(
            {
                "type": "request",
                "model": "m0",
                "environment": "prod",
                "version": 2,
                "time": (now - timedelta(minutes=m)).isoformat(),
                "count": 100,
                "status": 200 if m > 20 else 503,
                "latency_ms": 40,
            }
        )
        for m in range(1, 61)
    ]
    bus.services.metrics_sources["local"].ingest(lines)
    t = time.perf_counter()
    outcome = bus.handle(CheckSlos(actor="bench"))
    wall = time.perf_counter() - t
    rolled = next(f for f in outcome.follow_ups if f.status == "rolled_back")
    return wall, float(rolled.data["alert_to_rollback_seconds"])


def best(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bus, _clock, rows = build(Path(tmp), args.models, args.days)
        check = best(args.runs, lambda: bus.handle(CheckSlos(actor="bench")))  # type: ignore[attr-defined]
        slos = args.models * 2
        print(
            f"CheckSlos: {slos} SLOs x 8 windows over {rows} telemetry rows (SQLite): "
            f"{check * 1000:.1f} ms total, {check / slos * 1000:.2f} ms per SLO"
        )
    with tempfile.TemporaryDirectory() as tmp:
        wall, latency = rollback_latency(Path(tmp))
        print(
            f"page → automatic rollback (local backend, real clock): CheckSlos {wall * 1000:.1f} ms; "
            f"alert to alias moved {latency * 1000:.1f} ms"
        )
    samples = [(float(t), float(t * 3 if t % 1000 else 0)) for t in range(100_000)]
    inc = best(args.runs, lambda: counter_increase(samples))
    print(f"counter_increase: 100000 samples with 99 resets: {inc * 1000:.1f} ms")
    rules = [
        ("page", 14.4, 3600, 300),
        ("page", 6.0, 21600, 1800),
        ("ticket", 3.0, 86400, 7200),
        ("ticket", 1.0, 259200, 21600),
    ]
    windows = {w: WindowCounts(990.0, 1000.0) for w in (300, 1800, 3600, 7200, 21600, 86400, 259200)}
    ev = best(args.runs, lambda: [evaluate_rules(rules, windows, 0.995) for _ in range(10_000)])
    print(f"evaluate_rules: 10000 SLOs x 4 rules: {ev * 1000:.1f} ms")


if __name__ == "__main__":
    main()
