"""Drift engine benchmark: 1 M rows x 20 numeric + 5 categorical features (seeded).

Prints, as the median of ``--repeat`` runs (default 5):

(a) compare a current window held in memory against a stored reference profile
    (profile JSON parsed, current binned, metrics, verdicts, report);
(b) the same from a CSV file and from a Parquet file (read through the local
    artifact store, streamed in chunks);
(c) the reference-profile build time;
(d) peak extra memory of (a) and (b), each measured in a fresh subprocess as
    ``VmHWM`` after the run minus ``VmRSS`` before it (the peak is reset through
    ``/proc/self/clear_refs`` once the inputs are in place), and its flatness from
    1 M to 10 M rows for streamed input (a generated chunk stream and a Parquet file);
(e) scipy per column (``ks_2samp`` + ``wasserstein_distance`` on the numeric
    features, ``chi2_contingency`` on the categorical ones) and, when a Python
    with Evidently is given (``--evidently-python``), Evidently's
    ``DataDriftPreset`` on the same data (run once: it takes minutes), as ratios.

With ``--baseline DIR`` (another checkout of this repository, e.g. the main branch) it instead times
(a) and (b) for that checkout's code and this one's, alternately, in fresh processes (``--rounds``
of each, ``--repeat`` runs per process), and prints the medians of wall and CPU seconds side by side,
their ratios, and whether the two reports are byte for byte the same: before/after from one run, on a
machine whose load changes from minute to minute.

Usage: ``python benchmarks/drift.py [--rows 1000000] [--repeat 5] [--evidently-python PATH] [--no-10m]
[--baseline DIR [--rounds 3]]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

# Self-contained so the Evidently subprocess (another virtualenv) builds exactly the same data.
GENERATOR = '''
import numpy as np

NUMERIC = 20
CATEGORICAL = 5
CATEGORIES = [[f"c{j}_{k}" for k in range(n)] for j, n in enumerate([3, 5, 12, 30, 80])]


def make_frame(rows, seed, drifted):
    """Return {name: float64 array} and {name: (int codes, categories)}; drifted shifts 4 numeric + 1 categorical."""
    rng = np.random.default_rng(seed)
    numeric = {}
    for i in range(NUMERIC):
        kind = i % 5
        if kind == 0:
            x = rng.normal(50.0, 10.0, rows)
        elif kind == 1:
            x = rng.lognormal(3.0, 0.6, rows)
        elif kind == 2:
            x = rng.gamma(2.0, 5.0, rows)
        elif kind == 3:
            x = rng.poisson(3.0, rows).astype(np.float64)
        else:
            x = rng.uniform(-1.0, 1.0, rows)
        if drifted and i in (0, 6, 12, 18):
            x = x * 1.15 + x.std() * 0.3
        if i % 7 == 3:
            x[rng.random(rows) < 0.01] = np.nan
        numeric[f"num_{i:02d}"] = x
    categorical = {}
    for j, cats in enumerate(CATEGORIES):
        weights = np.linspace(1.0, 2.0, len(cats))
        if drifted and j == 2:
            weights = weights[::-1] ** 2
        codes = rng.choice(len(cats), rows, p=weights / weights.sum()).astype(np.int32)
        categorical[f"cat_{j}"] = (codes, cats)
    return numeric, categorical
'''
exec(GENERATOR)  # defines make_frame, CATEGORIES, NUMERIC, CATEGORICAL

MB = 1024 * 1024


def frame(rows: int, seed: int, drifted: bool) -> dict[str, Any]:
    """Return a ModelPilot in-memory frame (categoricals dictionary-encoded)."""
    from modelpilot.drift.frames import Categorical

    numeric, categorical = make_frame(rows, seed, drifted)  # type: ignore[name-defined]  # noqa: F821
    out: dict[str, Any] = dict(numeric)
    out.update({k: Categorical(codes, cats) for k, (codes, cats) in categorical.items()})
    return out


def timed_cpu(fn: Any, repeat: int) -> tuple[list[float], list[float], Any]:
    """Return (wall seconds, CPU seconds of the whole process, last result) of ``repeat`` runs."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus, result


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    """Return (median seconds, last result)."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def write_files(cur: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write the current window as CSV and Parquet."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    columns = {}
    for name, values in cur.items():
        if hasattr(values, "codes"):
            columns[name] = pa.array(np.asarray(values.categories, dtype=object)[values.codes])
        else:
            columns[name] = pa.array(values, from_pandas=True)
    table = pa.table(columns)
    csv_path, parquet_path = folder / "current" / "window.csv", folder / "current-pq" / "window.parquet"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    parquet_path.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path, row_group_size=1 << 17)
    return csv_path, parquet_path


def compare_in_memory(blob: bytes, cur: dict[str, Any]) -> Any:
    from modelpilot.drift import Profile, ProfileAccumulator, compare_profiles

    reference = Profile.from_json(blob)
    return compare_profiles(reference, ProfileAccumulator(reference).add_all(cur))


def compare_file(blob: bytes, path: Path) -> Any:
    from modelpilot.adapters.local.artifacts import FolderArtifactStore
    from modelpilot.drift import Profile, ProfileAccumulator, compare_profiles

    try:
        from modelpilot.drift.io import ReadStats, read_capture
    except ImportError:  # a --baseline checkout from before drift/io/
        from modelpilot.drift import ReadStats, read_capture

    reference = Profile.from_json(blob)
    acc = ProfileAccumulator(reference)
    stats = ReadStats()
    for chunk in read_capture(FolderArtifactStore(), str(path), list(reference.features), stats):
        acc.add(chunk)
    return compare_profiles(reference, acc.profile())


def scipy_baseline(ref: dict[str, Any], cur: dict[str, Any]) -> int:
    import numpy as np
    from scipy import stats

    drifted = 0
    for name, a in ref.items():
        b = cur[name]
        if hasattr(a, "codes"):
            table = np.vstack(
                [np.bincount(a.codes, minlength=len(a.categories)), np.bincount(b.codes, minlength=len(a.categories))]
            )
            drifted += stats.chi2_contingency(table[:, table.sum(axis=0) > 0])[1] < 0.05
            continue
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        drifted += stats.ks_2samp(a, b).pvalue < 0.05
        stats.wasserstein_distance(a, b)
    return drifted


# -- memory, in subprocesses ---------------------------------------------------------
def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_probe(mode: str, rows: int, path: str, blob_path: str) -> dict[str, Any]:
    """Run one comparison in this (fresh) process and return its peak extra memory."""
    from modelpilot.drift import Profile, ProfileAccumulator, compare_profiles
    from modelpilot.drift.frames import Chunk

    blob = Path(blob_path).read_bytes()
    Profile.from_json(blob)  # imports and first-use costs are not the run's
    if mode == "file":
        import pyarrow.compute
        import pyarrow.csv
        import pyarrow.parquet  # noqa: F401 - loaded code is not memory the run uses
    cur = frame(rows, 2, True) if mode == "memory" else None
    reset = _reset_peak()
    before = _status("VmRSS")
    if mode == "memory":
        compare_in_memory(blob, cur)  # type: ignore[arg-type]
    elif mode == "stream":
        reference = Profile.from_json(blob)
        acc = ProfileAccumulator(reference)
        step = 1 << 16
        for start in range(0, rows, step):
            n = min(step, rows - start)
            part = frame(n, 1000 + start // step, True)
            acc.add(Chunk(part, n))
        compare_profiles(reference, acc.profile())
    else:
        compare_file(blob, Path(path))
    peak = _status("VmHWM")
    return {"mode": mode, "rows": rows, "extra_mb": (peak - before) / MB, "peak_reset": reset}


def measure_memory(mode: str, rows: int, path: Path | str, blob_path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "_memory", mode, str(rows), str(path), str(blob_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def write_big_parquet(rows: int, path: Path) -> Path:
    """Write ``rows`` drifted rows to Parquet block by block (bounded memory)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    block = 1_000_000
    for start in range(0, rows, block):
        part = frame(min(block, rows - start), 500 + start // block, True)
        table = pa.table(
            {
                k: (
                    pa.array(np.asarray(v.categories, dtype=object)[v.codes])
                    if hasattr(v, "codes")
                    else pa.array(v, from_pandas=True)
                )
                for k, v in part.items()
            }
        )
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=1 << 17)
    assert writer is not None
    writer.close()
    return path


# -- Evidently, in its own interpreter -----------------------------------------------
EVIDENTLY = (
    GENERATOR
    + """
import json, sys, time
from pathlib import Path
import pandas as pd

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

def df(rows, seed, drifted):
    numeric, categorical = make_frame(rows, seed, drifted)
    data = dict(numeric)
    for k, (codes, cats) in categorical.items():
        data[k] = pd.Categorical.from_codes(codes, cats)
    return pd.DataFrame(data)

rows = int(sys.argv[1])
ref, cur = df(rows, 1, False), df(rows, 2, True)
import evidently
from evidently import Report, Dataset, DataDefinition
from evidently.presets import DataDriftPreset
definition = DataDefinition(numerical_columns=[c for c in ref if c.startswith("num")],
                            categorical_columns=[c for c in ref if c.startswith("cat")])
try:
    Path("/proc/self/clear_refs").write_text("5")
except OSError:
    pass
before = status("VmRSS")
t0 = time.perf_counter()
snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=definition),
                                           Dataset.from_pandas(ref, data_definition=definition))
snapshot.dict()
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "extra_mb": (status("VmHWM") - before) / 2**20,
                  "version": evidently.__version__}))
"""
)


def run_evidently(python: str, rows: int) -> dict[str, Any] | None:
    try:
        out = subprocess.run(
            [python, "-c", EVIDENTLY, str(rows)], capture_output=True, text=True, check=True, timeout=3600
        ).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        print(f"Evidently run failed: {exc}", file=sys.stderr)
        return None
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- before/after: another checkout's code against this one, alternately ------------------------
def time_side(shared: str, rows: int, repeat: int, folder: str) -> dict[str, Any]:
    """Time (a) and (b) with the code under ``shared`` (this process imports it first); return the samples."""
    import hashlib

    sys.path.insert(0, shared)
    import modelpilot
    from modelpilot.drift import build_reference

    assert modelpilot.__file__.startswith(shared), modelpilot.__file__
    ref, cur = frame(rows, 1, False), frame(rows, 2, True)
    blob = build_reference(ref).to_json()
    compare_in_memory(blob, cur)  # first use (imports, caches) is not timed
    out: dict[str, Any] = {}
    csv_path, parquet_path = Path(folder) / "current" / "window.csv", Path(folder) / "current-pq" / "window.parquet"
    for name, fn in (
        ("in-memory", lambda: compare_in_memory(blob, cur)),
        ("CSV", lambda: compare_file(blob, csv_path)),
        ("Parquet", lambda: compare_file(blob, parquet_path)),
    ):
        walls, cpus, report = timed_cpu(fn, repeat)
        out[name] = {"wall": walls, "cpu": cpus, "report": hashlib.sha256(report.to_json()).hexdigest()}
    return out


def compare_with_baseline(baseline: Path, rows: int, repeat: int, rounds: int, workdir: str | None) -> None:
    """Run :func:`time_side` for the baseline and for this checkout alternately; print the medians."""
    import os

    sides = {"before": str(baseline.resolve() / "shared"), "after": str(ROOT / "shared")}
    samples: dict[str, dict[str, dict[str, list[float]]]] = {k: {} for k in sides}
    reports: dict[str, dict[str, set[str]]] = {k: {} for k in sides}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        write_files(frame(rows, 2, True), Path(tmp))
        for _ in range(rounds):
            for side, shared in sides.items():
                out = subprocess.run(
                    [sys.executable, __file__, "_time", shared, str(rows), str(repeat), tmp],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                for name, got in json.loads(out.strip().splitlines()[-1]).items():
                    for kind in ("wall", "cpu"):
                        samples[side].setdefault(name, {}).setdefault(kind, []).extend(got[kind])
                    reports[side].setdefault(name, set()).add(got["report"])
    print(
        f"\nBefore ({baseline}) / after (this checkout): {rows:,} rows x 20 numeric + 5 categorical; "
        f"{rounds} alternating rounds x {repeat} runs each; {os.cpu_count()} CPUs, load average at the end "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print("| measurement | before wall s | after wall s | after/before | before CPU s | after CPU s | same report |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in samples["after"]:
        b, a = samples["before"][name], samples["after"][name]
        bw, aw = statistics.median(b["wall"]), statistics.median(a["wall"])
        same = len(reports["before"][name] | reports["after"][name]) == 1
        print(
            f"| {name} | {bw:.3f} | {aw:.3f} | {aw / bw:.2f} | {statistics.median(b['cpu']):.3f} | "
            f"{statistics.median(a['cpu']):.3f} | {same} |"
        )


# -- main ------------------------------------------------------------------------------
def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_memory":
        print(json.dumps(memory_probe(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_time":
        print(json.dumps(time_side(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scipy-repeat", type=int, default=None, help="runs of the scipy baseline (default --repeat)")
    parser.add_argument("--evidently-python", help="a Python interpreter with evidently installed")
    parser.add_argument("--no-10m", action="store_true", help="skip the 10 M-row memory runs")
    parser.add_argument("--workdir", help="where to write the data files (default: a temporary folder)")
    parser.add_argument("--baseline", type=Path, help="another checkout: time its code and this one's alternately")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of --baseline")
    args = parser.parse_args()
    if args.baseline:
        compare_with_baseline(args.baseline, args.rows, args.repeat, args.rounds, args.workdir)
        return

    from modelpilot.drift import build_reference

    rows = args.rows
    print(f"generating {rows:,} rows x {NUMERIC} numeric + {CATEGORICAL} categorical (seeded)...", flush=True)  # type: ignore[name-defined]  # noqa: F821
    ref, cur = frame(rows, 1, False), frame(rows, 2, True)
    results: list[tuple[str, float, str]] = []

    t_build, profile = timed(lambda: build_reference(ref), args.repeat)
    blob = profile.to_json()
    results.append(("(c) reference profile build", t_build, f"{len(blob) / 1024:.0f} KiB profile JSON"))

    t_mem, report = timed(lambda: compare_in_memory(blob, cur), args.repeat)
    results.append(("(a) compare, in-memory arrays", t_mem, f"drifted: {', '.join(report.drifted_features)}"))

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        folder = Path(tmp)
        blob_path = folder / "profile.json"
        blob_path.write_bytes(blob)
        csv_path, parquet_path = write_files(cur, folder)
        t_csv, r_csv = timed(lambda: compare_file(blob, csv_path), args.repeat)
        results.append(
            (
                "(b) compare, CSV file",
                t_csv,
                f"{csv_path.stat().st_size / MB:.0f} MiB; "
                f"same verdicts: {r_csv.drifted_features == report.drifted_features}",
            )
        )
        t_pq, r_pq = timed(lambda: compare_file(blob, parquet_path), args.repeat)
        results.append(
            (
                "(b) compare, Parquet file",
                t_pq,
                f"{parquet_path.stat().st_size / MB:.0f} MiB; "
                f"same verdicts: {r_pq.drifted_features == report.drifted_features}",
            )
        )

        memory = [
            measure_memory("memory", rows, "", blob_path),
            measure_memory("file", rows, csv_path, blob_path),
            measure_memory("file", rows, parquet_path, blob_path),
            measure_memory("stream", rows, "", blob_path),
        ]
        labels = ["in-memory", "CSV", "Parquet", "chunk stream"]
        if not args.no_10m:
            memory.append(measure_memory("stream", 10 * rows, "", blob_path))
            labels.append("chunk stream")
            big = write_big_parquet(10 * rows, folder / "big" / "window.parquet")
            memory.append(measure_memory("file", 10 * rows, big, blob_path))
            labels.append("Parquet")
        csv_path.unlink()

    scipy_repeat = args.scipy_repeat or args.repeat
    t_scipy, n_scipy = timed(lambda: scipy_baseline(ref, cur), scipy_repeat)
    evidently = run_evidently(args.evidently_python, rows) if args.evidently_python else None

    import os

    print(
        f"\nDrift engine benchmark: {rows:,} rows x 20 numeric + 5 categorical, median of {args.repeat} "
        f"(scipy: {scipy_repeat}, Evidently: 1); {os.cpu_count()} CPUs, load average at the end "
        f"{os.getloadavg()[0]:.1f}\n"
    )
    print(f"| {'measurement':<40} | {'seconds':>8} | notes")
    print(f"|{'-' * 42}|{'-' * 10}|------")
    for name, seconds, note in results:
        print(f"| {name:<40} | {seconds:8.3f} | {note}")
    print(
        f"| {'(e) scipy ks_2samp + wasserstein / col':<40} | {t_scipy:8.3f} | "
        f"{t_scipy / t_mem:.0f}x the in-memory compare ({n_scipy} features with p < 0.05 unadjusted)"
    )
    if evidently:
        print(
            f"| {'(e) Evidently DataDriftPreset':<40} | {evidently['seconds']:8.3f} | "
            f"{evidently['seconds'] / t_mem:.0f}x the in-memory compare; Evidently {evidently['version']}, "
            f"peak extra memory {evidently['extra_mb']:.0f} MiB"
        )
    else:
        print(f"| {'(e) Evidently DataDriftPreset':<40} | {'-':>8} | not measured (give --evidently-python)")
    print("\n(d) peak extra memory (VmHWM - VmRSS before the run, fresh process each)\n")
    print(f"| {'input':<14} | {'rows':>12} | {'extra MiB':>9} |")
    print(f"|{'-' * 16}|{'-' * 14}|{'-' * 11}|")
    for label, m in zip(labels, memory, strict=True):
        print(
            f"| {label:<14} | {m['rows']:>12,} | {m['extra_mb']:>9.1f} |"
            + ("" if m["peak_reset"] else " (peak not reset: includes input generation)")
        )


if __name__ == "__main__":
    main()
