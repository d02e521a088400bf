"""The canary tick on the local backend: how long one ``AdvanceCanaries`` takes for N active canaries.

Builds N models in one home (SQLite registry, folder artifacts, SQLite telemetry store), each
with v1 in prod and v2's canary started, feeds ten minutes of per-version request telemetry,
then prints the wall time of:

* a tick with nothing due (the common case: the timer fires more often than steps end);
* a tick that analyses every canary (two metric queries per version) and advances it;
* an operator's ``ChangeCanary`` (pause) with its compare-and-set, audit record and manifest.

    .venv/bin/python benchmarks/canary_tick.py [canaries]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelpilot.bootstrap import bootstrap
from modelpilot.config import Settings
from modelpilot.domain.commands import AdvanceCanaries, ChangeCanary, PromoteModel, RegisterModel
from modelpilot.package.builder import write_package
from modelpilot.testing import FakeClock

POLICY = """
environments: [dev, prod]
defaults:
  environments:
    prod:
      canary:
        steps: [10, 50, 100]
        interval: 10m
        min_samples: 100
        analysis:
          - {name: error-ratio, threshold: 0.01}
          - name: latency
            threshold: 0.02
            sli:
              kind: threshold
              source: local
              threshold_ms: 250
              good: {query: requests.fast}
              total: {query: requests}
"""


def setup(home: Path, count: int, clock: FakeClock) -> Any:
    (home / "modelpilot.yaml").write_text(POLICY)
    bus = bootstrap(Settings(backend="local", home=str(home), policy=str(home / "modelpilot.yaml")), clock=clock)
    for i in range(count):
        name = f"model-{i:03d}"
        for version in (1, 2):
            root = home / "packages" / f"{name}-{version}"
            write_package(
                root,
                files={"model.bin": f"{name}-{version}".encode()},
                name=name,
                framework="numpy-logreg",
                metrics={"auc": 0.8 + version / 100},
                lineage={"run_id": f"{name}-{version}"},
                features=[{"name": "x", "type": "numeric"}],
            )
            bus.handle(RegisterModel(package_uri=str(root), actor="alice"))
            bus.handle(PromoteModel(model=name, environment="dev", actor="alice", version=version))
            bus.handle(PromoteModel(model=name, environment="prod", actor="alice", version=version))
    return bus


def feed(bus: Any, count: int, clock: FakeClock) -> None:
    lines = []
    for i in range(count):
        for minute in range(10):
            at = (clock.now + timedelta(minutes=minute, seconds=30)).isoformat()
            for version in (1, 2):
                line = {"type": "request", "model": f"model-{i:03d}", "environment": "prod", "version": version}
                lines.append(json.dumps({**line, "time": at, "count": 50, "status": 200, "latency_ms": 30}))
    bus.services.telemetry_ingest.ingest(lines)
    clock.advance(600)


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    clock = FakeClock()
    with tempfile.TemporaryDirectory() as folder:
        bus = setup(Path(folder), count, clock)
        tick = AdvanceCanaries(actor="system:bench")
        idle = [timed(lambda: bus.handle(tick)) for _ in range(5)]
        feed(bus, count, clock)
        busy = timed(lambda: bus.handle(tick))
        advanced = sum(1 for c in bus.services.registry.list_canaries() if c.weight == 50)
        pauses = [
            timed(
                lambda i=i: bus.handle(
                    ChangeCanary(model=f"model-{i:03d}", environment="prod", action="pause", actor="alice")
                )
            )
            for i in range(min(count, 20))
        ]
    print(f"canaries: {count}")
    print(f"tick, nothing due:         median {statistics.median(idle) * 1000:.1f} ms")
    per = busy / count * 1000
    print(f"tick, every canary due:    {busy * 1000:.1f} ms ({per:.2f} ms per canary; {advanced} advanced)")
    print(f"operator pause (CAS+audit): median {statistics.median(pauses) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
