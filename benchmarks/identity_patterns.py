"""Cost of matching identities against policy patterns, typical and adversarial.

For each case: the median wall time of one ``domain.identity.matches`` call over
``--runs`` calls, and the ratio to the typical case. The adversarial case is a
pattern with many stars against a 500-character identity that does not match: a
backtracking matcher (a regular expression built from the glob) needs time
exponential in the number of stars there; this matcher needs
O(len(identity) * len(pattern)).

Usage: ``python benchmarks/identity_patterns.py [--runs 200]``
"""

from __future__ import annotations

import argparse
import statistics
import time

from modelpilot.domain.identity import matches

CASES = {
    "typical: *@example.com": ("alice@example.com", "*@example.com"),
    "role: arn:…:assumed-role/*": (
        "arn:aws:sts::123456789012:assumed-role/Approvers/alice-1",
        "arn:aws:sts::123456789012:assumed-role/*",
    ),
    "adversarial: 30 stars, 500 chars": ("a" * 500, "*a" * 30 + "*b"),
}


def main() -> None:
    """Time each case and print its median and the ratio to the first."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    medians = {}
    for name, (who, pattern) in CASES.items():
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            matches(who, pattern)
            times.append(time.perf_counter() - start)
        medians[name] = statistics.median(times)
    first = next(iter(medians.values()))
    for name, median in medians.items():
        print(f"{name:40s} median {median * 1e6:10.1f} µs   x{median / first:8.1f}")


if __name__ == "__main__":
    main()
