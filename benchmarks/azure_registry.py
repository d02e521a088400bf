"""Table Storage registry against Azurite: latency of one alias move and behaviour under contention.

Starts its own Azurite (``make tools`` installs it), then prints:

* the median and p95 latency of ``move_alias`` (alias + history + audit in one
  entity-group transaction) and of ``register_version``, sequentially;
* for 10 threads moving one alias at once: moves committed per second, how many
  callers got ``ConcurrencyConflict``, and whether the audit chain verifies.

Azurite runs in one Node process on this machine, so the numbers show the
adapter's round trips and contention handling, not Azure's latency.

    .venv/bin/python benchmarks/azure_registry.py [moves]
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from azure.data.tables import TableServiceClient

from modelpilot.adapters.azure.registry import TableRegistry
from modelpilot.domain.audit import verify_chain
from modelpilot.exceptions import ConcurrencyConflict
from tests.support.azure import start_azurite
from tests.support.builders import T0, change, entry, manifest


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(moves: int = 100) -> None:
    azurite = start_azurite()
    try:
        service = TableServiceClient.from_connection_string(azurite.connection_string)
        registry = TableRegistry(service.create_table(f"bench{uuid.uuid4().hex[:12]}"))
        register_ms = []
        for i in range(20):
            t0 = time.perf_counter()
            registry.register_version(
                manifest=manifest(seed=str(i)),
                manifest_digest=f"{i:064x}",
                package_uri="az://models/churn",
                registered_by="bench",
                registered_at=T0,
                source="upload",
                external_id=None,
                status="registered",
                audit=entry(),
            )
            register_ms.append((time.perf_counter() - t0) * 1000)
        move_ms = []
        for rev in range(1, moves + 1):
            t0 = time.perf_counter()
            previous = (rev - 2) % 20 + 1 if rev > 1 else None
            registry.move_alias(
                change=change("churn", "dev", rev, previous, (rev - 1) % 20 + 1),
                expected_revision=rev - 1,
                audit=entry(action="promote"),
            )
            move_ms.append((time.perf_counter() - t0) * 1000)
        print(
            f"register_version: median {statistics.median(register_ms):.1f} ms, "
            f"p95 {percentile(register_ms, 0.95):.1f} ms (20 versions)"
        )
        print(
            f"move_alias:       median {statistics.median(move_ms):.1f} ms, "
            f"p95 {percentile(move_ms, 0.95):.1f} ms ({moves} sequential moves)"
        )

        won, lost = [], []
        barrier = threading.Barrier(10)

        def worker(i: int) -> None:
            barrier.wait()
            for _ in range(10):
                current = registry.get_alias("churn", "prod")
                rev = current.revision if current else 0
                try:
                    registry.move_alias(
                        change=change("churn", "prod", rev + 1, current.version if current else None, i + 1),
                        expected_revision=rev,
                        audit=entry(action="promote"),
                    )
                    won.append(i)
                except ConcurrencyConflict:
                    lost.append(i)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        history = registry.alias_history("churn", "prod")
        ok = verify_chain("churn", registry.audit_records("churn")).ok
        print(
            f"10 threads x 10 attempts on one alias: {len(won)} moves committed, {len(lost)} conflicts, "
            f"{len(won) / elapsed:.1f} moves/s, history revisions 1..{len(history)} "
            f"{'contiguous' if [c.revision for c in history] == list(range(1, len(history) + 1)) else 'BROKEN'}, "
            f"audit chain {'verifies' if ok else 'BROKEN'}"
        )
    finally:
        azurite.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
