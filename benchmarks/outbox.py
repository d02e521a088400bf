"""What the outbox costs per command on the local backend (SQLite registry, JSON-lines event log).

Runs the same sequence twice in fresh homes, with the outbox on and off (the registry's
``supports_outbox`` switched off gives the publish-after-commit path of before): for each of ``--models``
models, ``--versions`` uploads with auto-promotion (register + promote to dev: two audited events) each
followed by the promotion of that version to staging (one more). Times each ``bus.handle`` with
``time.perf_counter`` and prints the median and the 95th percentile (milliseconds), the registry reads and
writes the outbox adds per command (counted by wrapping the SQLite adapter's ``_read`` / ``_write``),
and then one relay of every model (it must publish nothing: every event already went out).

Usage: ``python benchmarks/outbox.py [--models 20] [--versions 5]``
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

POLICY = "environments: [dev, staging, prod]\n"


def _package(root: Path, name: str, auc: float) -> Path:
    from modelpilot.package.builder import write_package

    folder = root / f"{name}-{auc}"
    write_package(
        folder,
        files={"model.bin": f"{name}-{auc}".encode()},
        name=name,
        framework="numpy-logreg",
        metrics={"auc": auc},
        lineage={"run_id": f"{name}-{auc}"},
        features=[{"name": "x", "type": "numeric"}],
    )
    return folder


def run(outbox_on: bool, models: int, versions: int) -> dict[str, Any]:
    from modelpilot.adapters.local.registry import SqliteRegistry
    from modelpilot.bootstrap import bootstrap
    from modelpilot.config import Settings
    from modelpilot.domain.commands import PromoteModel, RegisterModel
    from modelpilot.service import outbox

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "modelpilot.yaml").write_text(POLICY)
        bus = bootstrap(Settings.from_env({}, backend="local", home=str(home)))
        registry = bus.services.registry
        assert isinstance(registry, SqliteRegistry)
        registry.supports_outbox = outbox_on
        counts = {"reads": 0, "writes": 0}
        read, write = registry._read, registry._write

        def counted_read(sql: str, *args: Any) -> Any:
            counts["reads"] += 1
            return read(sql, *args)

        def counted_write() -> Any:
            counts["writes"] += 1
            return write()

        registry._read = counted_read  # type: ignore[method-assign]
        registry._write = counted_write  # type: ignore[method-assign]
        steps: list[Any] = []
        for i in range(models):
            for v in range(versions):
                package = _package(Path(tmp), f"m{i}", round(0.8 + v / 1000, 3))
                steps.append(RegisterModel(package_uri=str(package), actor="alice", auto_promote=True))
                steps.append(PromoteModel(model=f"m{i}", environment="staging", actor="alice", version=v + 1))
        timings: list[float] = []
        for command in steps:
            start = time.perf_counter()
            outcome = bus.handle(command)
            timings.append((time.perf_counter() - start) * 1000)
            assert outcome.status in {"registered", "promoted"}, outcome.message
        commands = len(steps)
        log = [json.loads(line) for line in (home / "events.jsonl").read_text().splitlines()]
        relayed = sum(outbox.relay(bus.services).values()) if outbox_on else 0
        timings.sort()
        return {
            "median_ms": statistics.median(timings),
            "p95_ms": timings[int(0.95 * (len(timings) - 1))],
            "reads_per_command": counts["reads"] / commands,
            "writes_per_command": counts["writes"] / commands,
            "events": len(log),
            "with_id": sum(1 for e in log if e.get("id")),
            "relayed_after": relayed,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--versions", type=int, default=5)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"{args.models} models x {args.versions} versions (upload + auto-promotion to dev, promotion to staging)")
    print(
        f"{'outbox':<8} {'median ms':>10} {'p95 ms':>8} {'reads/cmd':>10} {'writes/cmd':>11} {'events':>7} "
        f"{'with id':>8} {'relay after':>12}"
    )
    for on in (False, True):
        r = run(on, args.models, args.versions)
        print(
            f"{'on' if on else 'off':<8} {r['median_ms']:>10.2f} {r['p95_ms']:>8.2f} {r['reads_per_command']:>10.1f} "
            f"{r['writes_per_command']:>11.1f} {r['events']:>7} {r['with_id']:>8} {r['relayed_after']:>12}"
        )


if __name__ == "__main__":
    main()
