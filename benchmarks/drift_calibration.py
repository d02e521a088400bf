"""Calibration sweep of the categorical drift test: false drift rates on identical data.

For each cardinality and window size, independent reference and current samples are drawn from
one distribution (uniform, or Zipf-like with exponent 1), profiled by the engine, and compared.
It prints, per case, the share of seeds whose chi-squared p-value is below 0.05 and 0.01 (a
calibrated test gives about 0.05 and 0.01), the share the engine calls drifted (effect and
corrected p-value, one feature), the binomial 99.9 % upper bound of the share for the number of
seeds, and which variant of the test ran (asymptotic, pooled, permutation).

Usage: ``python benchmarks/drift_calibration.py [--seeds 100] [--quick]``
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))


_VARIANTS = {"chi2": "chi2", "chi2, small cells pooled": "pooled", "permutation": "permutation"}


def sweep(levels: int, n: int, m: int, seeds: int, shape: str) -> dict[str, object]:
    """Return the false rates of one case."""
    from modelpilot.drift import ProfileAccumulator, build_reference, compare_profiles
    from modelpilot.drift.frames import Categorical

    cats = [f"level-{k}" for k in range(levels)]
    weights = np.ones(levels) if shape == "uniform" else 1.0 / np.arange(1, levels + 1)
    probs = weights / weights.sum()
    below05 = below01 = drifted = 0
    tests: Counter[str] = Counter()
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        ref = build_reference({"c": Categorical(rng.choice(levels, n, p=probs), cats)})
        cur = ProfileAccumulator(ref).add_all({"c": Categorical(rng.choice(levels, m, p=probs), cats)})
        item = compare_profiles(ref, cur).feature("c")
        p = item["pvalue"]
        below05 += p < 0.05
        below01 += p < 0.01
        drifted += bool(item["drifted"])
        tests[_VARIANTS.get(str(item["metrics"]["chi2_test"]), "other")] += 1
    return {"p<0.05": below05 / seeds, "p<0.01": below01 / seeds, "drifted": drifted / seeds, "tests": dict(tests)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="fewer cases (a smoke run)")
    args = parser.parse_args()
    from scipy import stats

    cases = [
        (levels, n, m, shape)
        for levels in (2, 10, 100, 300, 1_000, 20_000)
        for n, m in ((20_000, 20_000), (20_000, 1_000), (5_000, 100))
        for shape in ("uniform", "zipf")
    ]
    if args.quick:
        cases = [c for c in cases if c[1:3] == (20_000, 1_000) and c[3] == "uniform"]
    bound = stats.binom.ppf(0.999, args.seeds, 0.05) / args.seeds
    print(f"Categorical drift test on identical data: {args.seeds} seeds per case; a calibrated test")
    print(f"gives about 0.05 and 0.01; the 99.9 % binomial upper bound for 0.05 is {bound:.3f}\n")
    print(f"| {'levels':>6} | {'n ref':>6} | {'n cur':>6} | {'shape':<7} | p<0.05 | p<0.01 | drifted | sec | tests")
    print("|-------:|-------:|-------:|---------|-------:|-------:|--------:|----:|------")
    for levels, n, m, shape in cases:
        t0 = time.perf_counter()
        r = sweep(levels, n, m, args.seeds, shape)
        print(
            f"| {levels:>6} | {n:>6} | {m:>6} | {shape:<7} | {r['p<0.05']:6.3f} | {r['p<0.01']:6.3f} | "
            f"{r['drifted']:7.3f} | {time.perf_counter() - t0:3.0f} | {r['tests']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
