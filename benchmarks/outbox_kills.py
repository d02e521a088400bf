"""Kill test of the local outbox: CLI processes killed at random moments, then one relay; what was lost or doubled.

Starts ``--processes`` ``modelpilot register PKG --promote`` processes on one home, ``--parallel`` at a time,
each with its own package of the same model. The first batch runs to the end and its slowest run, T, sets
the kill window: every later process gets ``SIGKILL`` after a random delay uniform in ``[0.5 T, 1.1 T]``
(process start-up is most of T; some finish first). Then runs ``modelpilot outbox relay`` once and compares the
event log with the audit chain: every ``register`` / ``promote`` record must have its event (id
``<model>#<seq>``) in ``events.jsonl``. Prints the kills, the audited events, how many were missing before and
after the relay, and how many ids appear more than once (duplicates a consumer drops by id).

Usage: ``python benchmarks/outbox_kills.py [--processes 40] [--parallel 4] [--seed 1]``
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

POLICY = "environments: [dev, staging, prod]\n"
AUDITED = frozenset({"register", "promote"})


def _ids(home: Path) -> list[str]:
    path = home / "events.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [str(line["id"]) for line in lines if line.get("id")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=40)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from modelpilot.adapters.local.registry import SqliteRegistry
    from modelpilot.domain.audit import verify_chain
    from modelpilot.package.builder import write_package
    from modelpilot.service.outbox import event_id

    rng = random.Random(args.seed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "shared"), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "modelpilot.yaml").write_text(POLICY)
        packages = []
        for i in range(args.processes):
            folder = Path(tmp) / f"pkg{i}"
            write_package(
                folder,
                files={"model.bin": f"weights-{i}".encode()},
                name="churn",
                framework="numpy-logreg",
                metrics={"auc": 0.8},
                lineage={"run_id": f"run-{i}"},
                features=[{"name": "x", "type": "numeric"}],
            )
            packages.append(folder)
        killed = finished = 0
        home_arg = ["--home", str(home)]
        registry = SqliteRegistry(home / "registry.db")
        left_behind: set[str] = set()  # ids committed but not in the log right after some batch
        pending = list(packages)
        slowest: float | None = None
        while pending:
            batch, pending = pending[: args.parallel], pending[args.parallel :]
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "modelpilot.cli",
                        "register",
                        str(p),
                        "--promote",
                        "--actor",
                        "alice",
                        *home_arg,
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for p in batch
            ]
            started = time.monotonic()
            if slowest is None:  # the calibration batch: runs to the end
                for proc in procs:
                    proc.wait()
                slowest = time.monotonic() - started
                finished += len(procs)
                continue
            deadlines = [started + rng.uniform(0.5 * slowest, 1.1 * slowest) for _ in procs]
            for proc, deadline in zip(procs, deadlines, strict=True):
                while proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.005)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait()
                    killed += 1
                else:
                    finished += 1
            audited = {event_id("churn", r.seq) for r in registry.audit_records("churn") if r.action in AUDITED}
            left_behind |= audited - set(_ids(home))
        records = registry.audit_records("churn")
        expected = {event_id("churn", r.seq) for r in records if r.action in AUDITED}
        missing_before = len(expected - set(_ids(home)))
        relay = subprocess.run(
            [sys.executable, "-m", "modelpilot.cli", "outbox", "relay", "--home", str(home)],
            env=env,
            capture_output=True,
            check=False,
        )
        ids = _ids(home)
        doubled = sum(n - 1 for n in collections.Counter(ids).values() if n > 1)
        print(
            f"processes {args.processes} (parallel {args.parallel}, T = {slowest or 0:.2f} s): "
            f"killed {killed}, finished {finished}"
        )
        versions = len(registry.list_versions("churn"))
        print(f"audit chain verifies: {verify_chain('churn', records).ok}; versions {versions}")
        print(
            f"audited events {len(expected)}; left unpublished by a kill at some point {len(left_behind)} "
            f"(each sent by a later process); missing before the final relay {missing_before}; "
            f"relay exit {relay.returncode}"
        )
        print(f"missing after relay {len(expected - set(ids))}; ids seen twice or more (dropped by id) {doubled}")


if __name__ == "__main__":
    main()
