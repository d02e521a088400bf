"""Benchmark of the quality batch's join: 1 M predictions + 1 M labels, time and peak memory.

Generated (seeded) data: ``rows`` predictions with 36-character UUID inference ids, a score and a slice column,
and ``rows`` labels of which 90 % name a prediction (in another order) and 10 % name no prediction. Three runs,
each in a fresh process, peak extra memory = ``VmHWM`` after the run minus ``VmRSS`` before it (the peak reset
through ``/proc/self/clear_refs`` first):

(a) the join alone: the hash-partitioned join fed 64 Ki-row chunks from a generator (nothing held in memory
    but the chunk being made), then every partition joined;
(b) the whole window: the quality batch of one window on the local backend, reading the captures and the
    feedback as CSV files (pyarrow), join, metrics, exact ROC AUC, CBPE, report;
(c) for comparison, the join as a Python dict of the whole window (what a naive batch would hold).

Run ``python benchmarks/quality_join.py [--rows 1000000] [--scale 5]``; ``--scale`` adds (a) at that many times
the rows, to show the join's memory does not grow with the window.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MB = 1 << 20
CHUNK = 1 << 16


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


def _uuids(rng: Any, n: int) -> Any:
    """``n`` random 36-character UUID-shaped ids (bytes)."""
    import numpy as np

    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    chars = hexdigits[rng.integers(0, 16, size=(n, 36), dtype=np.uint8)]
    chars[:, [8, 13, 18, 23]] = ord("-")
    return np.ascontiguousarray(chars).view("S36").ravel()


def _chunk(rows: int, k: int, seed: int) -> Any:
    """Prediction chunk ``k``: the same ids, scores and slices every time (its own random stream)."""
    import numpy as np

    n = min(CHUNK, rows - k * CHUNK)
    rng = np.random.default_rng([seed, k])
    return _uuids(rng, n), rng.random(n), rng.integers(0, 5, n)


def predictions(rows: int, seed: int = 1) -> Any:
    """Yield (ids, scores, slice codes) in 64 Ki chunks."""
    for k in range(-(-rows // CHUNK)):
        yield _chunk(rows, k, seed)


def labels(rows: int, seed: int = 1) -> Any:
    """Yield (ids, labels) in 64 Ki chunks: the chunks of predictions in another order, rows shuffled within a
    chunk, 10 % of the ids replaced by ids no prediction has. Only one chunk is in memory at a time."""
    import numpy as np

    chunks = -(-rows // CHUNK)
    step = next((p for p in (7919, 104729, 1299709) if chunks % p), 1) if chunks > 1 else 1
    for k in range(chunks):
        ids = _chunk(rows, (k * step) % chunks, seed)[0]
        rng = np.random.default_rng([seed, k, 2])
        known = rng.random(len(ids)) < 0.9
        ids = np.where(known, ids, _uuids(rng, len(ids)))[rng.permutation(len(ids))]
        yield ids, (rng.random(len(ids)) < 0.3).astype(np.float64)


def run_join(rows: int, max_rows: int = 1 << 18) -> dict[str, Any]:
    """(a): the join alone on generated chunks."""
    import numpy as np

    from modelpilot.service.quality.join import HashJoin

    matched = 0
    with HashJoin(max_rows=max_rows) as join:
        for ids, score, plan in predictions(rows):
            join.add_predictions({"id": ids, "score": score, "s0": plan})
        for ids, y in labels(rows):
            join.add_labels(ids, y)
        for part in join.results():
            matched += int(np.count_nonzero(~np.isnan(part["y"])))
        stats = join.stats.to_dict()
    return {"matched": matched, **stats}


def write_files(rows: int, folder: Path) -> tuple[Path, Path]:
    """Captures and feedback of one window as CSV files (chunk by chunk)."""
    captures = folder / "captures.csv"
    feedback = folder / "feedback.csv"
    with captures.open("w") as out:
        out.write("inference_id,score,plan\n")
        for ids, score, plan in predictions(rows):
            out.writelines(f"{i.decode()},{s:.6f},p{k}\n" for i, s, k in zip(ids, score, plan, strict=True))
    with feedback.open("w") as out:
        out.write("inference_id,label\n")
        for ids, y in labels(rows):
            out.writelines(f"{i.decode()},{int(v)}\n" for i, v in zip(ids, y, strict=True))
    return captures, feedback


POLICY = """
version: 1
environments: [prod]
models:
  bench:
    quality: {window: 1h, slices: [plan], min_labelled_rows: 100, prediction_drift: false,
              thresholds: [{metric: roc_auc, min: 0.4}]}
"""


def prepare_home(folder: Path) -> Path:
    """A local home with model 'bench' v1 live in prod (a small labelled reference for the calibration)."""
    import numpy as np

    from modelpilot.bootstrap import bootstrap
    from modelpilot.config import Settings
    from modelpilot.domain.commands import PromoteModel, RegisterModel
    from modelpilot.package.builder import write_package

    home = folder / "home"
    home.mkdir(exist_ok=True)
    (home / "modelpilot.yaml").write_text(POLICY)
    rng = np.random.default_rng(3)
    score = rng.random(5000)
    plan, label = rng.integers(0, 5, 5000), rng.random(5000) < score
    ref = "score,plan,label\n" + "".join(f"{s:.6f},p{k},{int(y)}\n" for s, k, y in zip(score, plan, label, strict=True))
    write_package(
        folder / "pkg",
        files={"model.bin": b"w", "reference.csv": ref.encode()},
        artifacts=["model.bin"],
        name="bench",
        framework="bench",
        metrics={"auc": 0.7},
        features=[{"name": "plan", "type": "categorical"}],
        reference_data_uri="reference.csv",
    )
    bus = bootstrap(Settings(backend="local", home=str(home)))
    bus.handle(RegisterModel(package_uri=str(folder / "pkg"), actor="bench"))
    bus.handle(PromoteModel(model="bench", environment="prod", actor="bench"))
    return home


def run_window(home: Path, captures: Path, feedback: Path) -> dict[str, Any]:
    """(b): the quality batch of one window over the CSV files."""
    from modelpilot.bootstrap import bootstrap
    from modelpilot.config import Settings
    from modelpilot.domain.commands import RunQualityBatch

    bus = bootstrap(Settings(backend="local", home=str(home)))
    out = bus.handle(
        RunQualityBatch(
            actor="bench",
            model="bench",
            environment="prod",
            data_uri=str(captures),
            feedback_uri=str(feedback),
            end=datetime(2026, 1, 1, 1, tzinfo=UTC),
        )
    )
    [window] = out.data["windows"]
    report = json.loads(Path(window["report_uri"]).read_text())
    return {"labelled": window["labelled"], "predictions": window["predictions"], "join": report["join"]}


def run_dict(rows: int) -> dict[str, Any]:
    """(c): a dict of every prediction id, then one lookup per label."""
    by_id: dict[bytes, float] = {}
    for ids, score, _ in predictions(rows):
        by_id.update(zip(ids.tolist(), score.tolist(), strict=True))
    matched = sum(1 for ids, _ in labels(rows) for i in ids.tolist() if i in by_id)
    return {"matched": matched}


def probe(mode: str, rows: int, folder: str) -> dict[str, Any]:
    """Run one mode in this (fresh) process; return seconds and peak extra memory."""
    import numpy as np  # noqa: F401 - imports are not the run's memory

    import modelpilot.service.quality.batch  # noqa: F401

    if mode == "window":
        import pyarrow.csv  # noqa: F401
    reset = _reset_peak()
    before = _status("VmRSS")
    start = time.perf_counter()
    if mode == "join":
        result = run_join(rows, int(folder) if folder else 1 << 18)
    elif mode == "window":
        base = Path(folder)
        result = run_window(base / "home", base / "captures.csv", base / "feedback.csv")
    else:
        result = run_dict(rows)
    elapsed = time.perf_counter() - start
    return {
        "mode": mode,
        "rows": rows,
        "seconds": elapsed,
        "extra_mb": (_status("VmHWM") - before) / MB,
        "peak_reset": reset,
        **result,
    }


def measure(mode: str, rows: int, folder: Path | str = "") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "_probe", mode, str(rows), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--scale", type=int, default=0, help="also run (a) at rows x scale")
    args = parser.parse_args()
    rows = args.rows
    with tempfile.TemporaryDirectory(prefix="quality-bench-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        captures, feedback = write_files(rows, folder)
        written = time.perf_counter() - t
        prepare_home(folder)
        results = [measure("join", rows), measure("window", rows, folder), measure("dict", rows)]
        if args.scale > 1:
            results.append(measure("join", rows * args.scale))
            # the same window with partitions capped at 32 Ki rows: they split again, memory as for 1 M rows
            results.append(measure("join", rows * args.scale, 1 << 15))
        sizes = {p.name: p.stat().st_size / MB for p in (captures, feedback)}
    load = os.getloadavg()[0]
    print(
        f"Quality join benchmark: {rows:,} predictions + {rows:,} labels (90 % known ids), "
        f"{os.cpu_count()} CPUs, load average at the end {load:.1f}\n"
    )
    print(
        f"input CSV files: captures {sizes['captures.csv']:.0f} MiB, feedback {sizes['feedback.csv']:.0f} MiB "
        f"(written in {written:.1f} s)\n"
    )
    print("| run | rows | seconds | peak extra MiB | matched | notes |")
    print("|---|---:|---:|---:|---:|---|")
    notes = {
        "join": "hash join alone, generated chunks",
        "window": "quality batch of one window from CSV (read, join, metrics, AUC, CBPE, report)",
        "dict": "naive: dict of every prediction id",
    }
    for r in results:
        matched = r.get("matched", r.get("labelled"))
        extra = ""
        if r["mode"] == "join":
            extra = f"; {r['partitions']} partitions, largest {r['largest_partition']:,} rows"
            if r["repartitioned"]:
                extra += f", {r['repartitioned']} split again"
        print(
            f"| {r['mode']} | {r['rows']:,} | {r['seconds']:.2f} | {r['extra_mb']:.1f} | {matched:,} | "
            f"{notes[r['mode']]}{extra} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_probe":
        print(json.dumps(probe(sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")))
    else:
        main()
