"""Cold start of the Azure function app: import time of function_app.py and what it pulls in.

Runs a fresh interpreter per sample (as a new Functions worker does) and prints the
median and spread of the import time, the number of modules loaded, and whether
numpy or the storage SDKs were loaded by the import alone (they should not be:
adapters are built on the first invocation).

    .venv/bin/python benchmarks/azure_cold_start.py [samples]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, sys, time
t0 = time.perf_counter()
import function_app
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "modules": len(sys.modules),
                  "functions": len(function_app.app.get_functions()),
                  "numpy": "numpy" in sys.modules, "azure.storage.blob": "azure.storage.blob" in sys.modules,
                  "azure.data.tables": "azure.data.tables" in sys.modules}))
"""


def main(samples: int = 7) -> None:
    runs = []
    for _ in range(samples):
        out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    times = sorted(r["seconds"] * 1000 for r in runs)
    last = runs[-1]
    print(
        f"function_app import: median {statistics.median(times):.0f} ms, min {times[0]:.0f} ms, "
        f"max {times[-1]:.0f} ms over {samples} fresh interpreters"
    )
    print(f"functions indexed: {last['functions']}; modules loaded: {last['modules']}")
    print(
        "loaded by the import alone: "
        + ", ".join(f"{k}={last[k]}" for k in ("numpy", "azure.storage.blob", "azure.data.tables"))
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
