"""Cold-start import cost: ``modelpilot``, every function module, and their SDKs alone.

Each measurement runs in a fresh interpreter (as a new Lambda / Functions worker
would) and times the import inside it with ``time.perf_counter``; the whole
process time of ``python -c pass`` is printed for comparison. For each handler
module, the third-party packages it ended up loading are imported alone in
another fresh process: the difference is what ModelPilot's own code costs.

Usage: ``python benchmarks/cold_start.py [--runs 10]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys, time, json
sys.path.insert(0, {root!r})
t = time.perf_counter()
{statement}
elapsed = time.perf_counter() - t
ours = {{'modelpilot', 'functions', 'function_app', '__main__', '_distutils_hack', 'sitecustomize'}}
third = sorted(m for m in sys.modules if m.split('.')[0] not in ours and m.split('.')[0].isidentifier()
               and m.split('.')[0] not in sys.stdlib_module_names and not m.startswith('_'))
print(json.dumps({{"elapsed": elapsed, "third_party": third}}))
"""


def probe(statement: str) -> dict[str, object]:
    code = PROBE.format(root=str(ROOT), statement=statement)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def sdk_statement(modules: list[str]) -> str:
    """Import every third-party module a handler loaded (each on its own, errors ignored)."""
    return (
        "import importlib\nfor _m in " + repr(modules) + ":\n    try:\n        importlib.import_module(_m)\n"
        "    except Exception:\n        pass"
    )


def median_ms(statement: str, runs: int) -> tuple[float, list[str]]:
    samples, third = [], []
    for _ in range(runs):
        result = probe(statement)
        samples.append(float(result["elapsed"]) * 1000)  # type: ignore[arg-type]
        third = list(result["third_party"])  # type: ignore[call-overload]
    return statistics.median(samples), third


def bare_python_ms(runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def handler_modules() -> list[str]:
    modules = []
    for cloud in ("aws", "azure"):
        folder = ROOT / "functions" / cloud
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            modules.append(f"functions.{cloud}.{path.stem}")
    if (ROOT / "function_app.py").exists():
        modules.append("function_app")
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    runs = args.runs

    print(f"cold start, median of {runs} fresh processes, Python {sys.version.split()[0]}")
    print(f"{'what':52s} {'import ms':>10s} {'SDKs alone':>11s} {'ours':>8s}")
    bare = bare_python_ms(runs)
    print(f"{'python -c pass (whole process)':52s} {bare:10.1f}")
    core, third = median_ms("import modelpilot", runs)
    print(f"{'import modelpilot':52s} {core:10.1f} {'':>11s} {core:8.1f}  (target < 150)")
    for statement in ("import modelpilot.service.lifecycle", "import modelpilot.cli; modelpilot.cli.build_parser()"):
        ms, third = median_ms(statement, runs)
        sdk, _ = median_ms(sdk_statement(third), runs) if third else (0.0, [])
        print(f"{statement[:52]:52s} {ms:10.1f} {sdk:11.1f} {ms - sdk:8.1f}")
    for module in handler_modules():
        try:
            ms, third = median_ms(f"import {module}", runs)
        except subprocess.CalledProcessError as exc:
            print(f"{module:52s} failed to import: {exc.stderr.strip().splitlines()[-1:]}")
            continue
        sdk, _ = median_ms(sdk_statement(third), runs) if third else (0.0, [])
        flag = "" if ms - sdk < 150 else "  OVER TARGET"
        print(f"{module:52s} {ms:10.1f} {sdk:11.1f} {ms - sdk:8.1f}{flag}")


if __name__ == "__main__":
    main()
