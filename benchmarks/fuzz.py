"""Fuzz every parser and entrypoint translator: ``--cases`` hypothesis cases per target, outcomes counted.

The targets are those of ``tests/fuzz/targets.py`` (the CI runs them on a small profile in
``tests/fuzz/test_fuzz.py``). Each hypothesis example draws a batch of ``--batch`` inputs, so the
engine's per-example bookkeeping is paid once per batch. A case passes when it ends in a value or
a typed ``ModelPilotError`` and accepted input keeps the target's invariants; the first case that
does not stops the run with its traceback (hypothesis shrinks it first) and exit status 1.

Prints one row per target: cases run, accepted, typed errors (the three most frequent codes), and
CPU seconds. Usage::

    python benchmarks/fuzz.py [--cases 10000] [--batch 10] [--only manifest,policy] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz.targets import Target, all_targets


def fuzz(target: Target, cases: int, batch: int, random_seed: int) -> tuple[Counter[str], float]:
    """Run ``cases`` inputs through ``target``; return the outcome counts and the CPU seconds."""
    counts: Counter[str] = Counter()

    @seed(random_seed)
    @settings(
        max_examples=max(1, cases // batch),
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(target.strategy, min_size=batch, max_size=batch))
    def run(values: list[object]) -> None:
        for value in values:
            counts[target.run(value)] += 1

    started = time.process_time()
    run()
    return counts, time.process_time() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per target (default 10,000)")
    parser.add_argument("--batch", type=int, default=10, help="inputs drawn per hypothesis example")
    parser.add_argument("--only", help="comma-separated target names")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    targets = [t for t in all_targets() if wanted is None or t.name in wanted]
    print(f"{'target':28} {'cases':>7} {'accepted':>8} {'typed':>7}  {'cpu s':>6}  most frequent typed errors")
    total = 0
    for target in targets:
        counts, cpu = fuzz(target, args.cases, args.batch, args.seed)
        cases = sum(counts.values())
        total += cases
        typed = cases - counts["ok"]  # the CLI target labels its exit 2 "invalid"
        errors = Counter({k: v for k, v in counts.items() if k != "ok"})
        common = ", ".join(f"{k} {v}" for k, v in errors.most_common(3))
        print(f"{target.name:28} {cases:>7} {counts['ok']:>8} {typed:>7}  {cpu:>6.1f}  {common}")
        sys.stdout.flush()
    print(f"{len(targets)} targets, {total} cases: every outcome a value or a typed error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
