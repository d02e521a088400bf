"""Drift at scale: one window of N files read in one pass, over a process pool, and projected on Step Functions.

Generates the window on the fly in a temporary folder (nothing is committed):
``--files`` CSV (or Parquet) files of ``--rows-per-file`` rows x 20 numeric + 5
categorical features, seeded; four numeric features drift. Prints:

* single-process time (plan + read + merge + report) and its peak extra memory;
* ``--workers 2`` time (a spawn process pool, startup included) and the workers' peak memory;
* the partial-profile sizes (one batch per 1/8 of the window) and the merge time;
* peak memory of reading a quarter of the window versus all of it (it must not grow);
* the projected Step Functions wall time with 100 children from the measured per-file
  time: ``ceil(files / 100) x per-file time + child start + merge``, with a stated
  Lambda start-up figure (not measured here).

Every measurement runs in a fresh subprocess; peak extra memory is ``ru_maxrss``
after the run minus the resident size before it.

Usage: ``python benchmarks/drift_scale.py [--files 40] [--rows-per-file 10000] [--format csv|parquet]``;
``--large`` is 200 files x 200,000 rows (about 8 GB of CSV; expect minutes to generate and read).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

NUMERIC, CATEGORICAL = 20, 5
#: a Lambda child's start (cold start + Step Functions dispatch), assumed, not measured here
CHILD_START_SECONDS = 2.0


def _frame(rows: int, seed: int, drift: bool) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    for i in range(NUMERIC):
        shift = 0.5 if drift and i % 5 == 0 else 0.0
        cols[f"num_{i:02d}"] = rng.normal(shift, 1.0 + 0.1 * (i % 3), rows).round(5)
    for j in range(CATEGORICAL):
        cats = np.asarray([f"c{j}_{k}" for k in range(3 + 5 * j)], dtype=object)
        cols[f"cat_{j}"] = cats[rng.integers(0, len(cats), rows)]
    return cols


def _write(path: Path, cols: dict[str, Any], fmt: str) -> None:
    import pyarrow as pa

    table = pa.table({k: pa.array(v.tolist() if v.dtype == object else v) for k, v in cols.items()})
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)


def generate(root: Path, files: int, rows: int, fmt: str) -> dict[str, Any]:
    """Write the reference profile and the window's files; return the plan as JSON."""
    from modelpilot.drift.builder import build_reference
    from modelpilot.service.drift.fanout import WindowPlan

    data = root / "data"
    ref_path = data / "profiles" / "m" / "v1" / "reference-profile.json"
    ref_path.parent.mkdir(parents=True)
    ref_path.write_bytes(build_reference(_frame(200_000, 1, False), bins=1000).to_json())
    folder = data / "captures" / "m" / "e"
    folder.mkdir(parents=True)
    listed = []
    for i in range(files):
        path = folder / f"part-{i:04d}.{fmt}"
        _write(path, _frame(rows, 100 + i, True), fmt)
        listed.append((str(path), path.stat().st_size))
    plan = WindowPlan("m", "e", 1, "m-e-bench", "s", "e", None, str(ref_path), tuple(listed))
    return plan.to_dict()


# -- measurements, each in a fresh process ------------------------------------------------------
def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _services(home: str) -> Any:
    from modelpilot.bootstrap import build_services
    from modelpilot.config import Settings

    return build_services(Settings(backend="local", home=home, data_root=str(Path(home) / "data")))


def measure(kind: str, home: str, plan_doc: dict[str, Any], share: float) -> dict[str, Any]:
    """Run one measurement in this (fresh) process and return its numbers."""
    import resource

    from modelpilot.service.drift.fanout import Batch, PartialProfile, WindowPlan, merge_partials, plan_batches
    from modelpilot.service.drift.window import merge_window, run_partial

    svc = _services(home)
    plan = WindowPlan.from_dict(plan_doc)
    plan = WindowPlan(**{**plan.__dict__, "files": plan.files[: max(1, int(len(plan.files) * share))]})
    before = _rss_kib()
    out: dict[str, Any] = {"files": len(plan.files), "bytes": plan.total_bytes}
    t0 = time.perf_counter()
    if kind == "single":
        whole = Batch(0, tuple(u for u, _ in plan.files), plan.total_bytes, "all")
        partial = run_partial(svc, plan, whole)
        out["read_seconds"] = time.perf_counter() - t0
        done = merge_window(svc, plan, [whole], [partial])
        out["rows"] = partial.rows
        out["severity"] = done["report"].severity
    elif kind == "pool":
        from modelpilot.cli._drift_pool import ProcessPoolRunner
        from modelpilot.config import Settings

        batches = plan_batches(plan, max_bytes=-(-plan.total_bytes // 8))
        runner = ProcessPoolRunner(Settings(backend="local", home=home, data_root=str(Path(home) / "data")), 2)
        partials = list(runner(plan, batches))
        out["read_seconds"] = time.perf_counter() - t0
        done = merge_window(svc, plan, batches, partials)
        out["rows"] = sum(p.rows for p in partials)
        out["severity"] = done["report"].severity
    else:  # partials: sizes and the merge alone
        batches = plan_batches(plan, max_bytes=-(-plan.total_bytes // 8))
        blobs = [run_partial(svc, plan, b).to_json() for b in batches]
        out["partial_bytes"] = [len(b) for b in blobs]
        t1 = time.perf_counter()
        merged = merge_partials(PartialProfile.from_json(b) for b in blobs)
        out["merge_seconds"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        merge_window(svc, plan, batches, [merged] if merged else [])
        out["merge_and_report_seconds"] = out["merge_seconds"] + time.perf_counter() - t2
    out["seconds"] = time.perf_counter() - t0
    out["peak_extra_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    out["children_peak_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def _fresh(kind: str, home: Path, plan: dict[str, Any], share: float = 1.0) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(dir=home.parent))  # its own data root: reports are written once per root
    code = (
        "import json,sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]);"
        "import drift_scale as b; print(json.dumps(b.measure(sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), "
        "float(sys.argv[6]))))"
    )
    argv = [sys.executable, "-c", code, str(ROOT / "shared"), str(Path(__file__).parent), kind]
    argv += [str(work), json.dumps(plan), str(share)]
    done = subprocess.run(argv, check=True, capture_output=True, text=True, cwd=work)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Generate, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--rows-per-file", type=int, default=10_000)
    parser.add_argument("--format", choices=["csv", "parquet"], default="csv")
    parser.add_argument("--large", action="store_true", help="200 files x 200,000 rows")
    parser.add_argument("--children", type=int, default=100, help="Step Functions children for the projection")
    args = parser.parse_args()
    if args.large:
        args.files, args.rows_per_file = 200, 200_000
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        plan = generate(home, args.files, args.rows_per_file, args.format)
        size = sum(n for _, n in plan["files"])
        print(
            f"window: {args.files} {args.format} files x {args.rows_per_file:,} rows x "
            f"{NUMERIC} numeric + {CATEGORICAL} categorical = {size / 2**20:,.0f} MiB "
            f"(generated in {time.perf_counter() - t0:.1f} s); {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        single = _fresh("single", home, plan)
        pool = _fresh("pool", home, plan)
        parts = _fresh("partials", home, plan)
        quarter = _fresh("single", home, plan, 0.25)
        # the marginal time of a file (the whole window minus a quarter of it): fixed start-up costs excluded
        per_file = (single["read_seconds"] - quarter["read_seconds"]) / max(1, single["files"] - quarter["files"])
        waves = math.ceil(args.files / args.children)
        children = min(args.files, args.children)
        merge_projected = (
            parts["merge_seconds"] / 8 * children + parts["merge_and_report_seconds"] - parts["merge_seconds"]
        )
        projected = CHILD_START_SECONDS + waves * per_file + merge_projected
        sizes = parts["partial_bytes"]
        rows = [
            (
                "single process: read + merge + report",
                single["seconds"],
                f"peak extra {single['peak_extra_mib']:.0f} MiB; {single['rows']:,} rows; "
                f"severity {single['severity']}",
            ),
            (
                "--workers 2 (spawn pool, 8 batches)",
                pool["seconds"],
                f"{single['seconds'] / pool['seconds']:.2f}x the single process; workers' peak RSS "
                f"{pool['children_peak_mib']:.0f} MiB; same severity: {pool['severity'] == single['severity']}",
            ),
            (
                "merge of 8 partials",
                parts["merge_seconds"],
                f"partials {min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KiB "
                f"(median {statistics.median(sizes) / 1024:.0f} KiB)",
            ),
            ("merge + report + status", parts["merge_and_report_seconds"], ""),
            (
                "per file (single process, marginal)",
                per_file,
                f"{args.rows_per_file:,} rows, {size / args.files / 2**20:.1f} MiB",
            ),
            (
                f"projected Step Functions, {args.children} children",
                projected,
                f"{waves} file(s) per child x per-file time + {CHILD_START_SECONDS:.0f} s child start (assumed) "
                f"+ merge of {children} partials ({merge_projected:.2f} s)",
            ),
        ]
        print()
        print("| measurement | seconds | notes |")
        print("|---|---:|---|")
        for name, seconds, note in rows:
            print(f"| {name} | {seconds:.3f} | {note} |")
        print()
        print(
            f"peak extra memory, one process: {quarter['files']} files {quarter['peak_extra_mib']:.0f} MiB, "
            f"{single['files']} files {single['peak_extra_mib']:.0f} MiB (bounded: chunks are binned and dropped)"
        )


if __name__ == "__main__":
    main()
