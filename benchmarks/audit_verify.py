"""Cost of the anchored audit on the local backend: appends with the head, verify, checkpoint.

Builds one SQLite registry with ``--models`` models, each with ``--versions``
registrations, a promotion of each into dev and an approval (3 records per
version), then times with ``time.perf_counter``: one audited write (median of the
last 200 registrations), a full ``verify_audit`` (chains, heads, checkpoint and
state replay), the hash chains alone, and ``write_checkpoint``, each the median of ``--runs`` runs.

Usage: ``python benchmarks/audit_verify.py [--models 20] [--versions 50] [--runs 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Build the registry, then time the audit operations."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from modelpilot.adapters.local.artifacts import FolderArtifactStore
    from modelpilot.adapters.local.registry import SqliteRegistry
    from modelpilot.adapters.local.secrets import FileSecrets
    from modelpilot.domain.audit import AuditEntry, verify_chain
    from modelpilot.domain.checkpoint import CHECKPOINT_SECRET
    from modelpilot.domain.model import AliasChange, Approval
    from modelpilot.service.audit import latest_checkpoint, verify_audit, write_checkpoint
    from tests.support.builders import manifest

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as tmp:
        registry = SqliteRegistry(Path(tmp) / "registry.db")
        store, root = FolderArtifactStore(), str(Path(tmp) / "data")
        secrets = FileSecrets(Path(tmp) / "secrets", generate=[CHECKPOINT_SECRET])
        writes: list[float] = []
        for m in range(args.models):
            name = f"model-{m:03d}"
            for v in range(1, args.versions + 1):
                man = manifest(name, seed=str(v))
                digest = f"{m:04d}{v:060d}"
                start = time.perf_counter()
                registry.register_version(
                    manifest=man,
                    manifest_digest=digest,
                    package_uri=f"pkg://{name}/{v}",
                    registered_by="bench",
                    registered_at=t0,
                    source="upload",
                    external_id=None,
                    status="registered",
                    audit=AuditEntry(name, "bench", "register", t0, evidence={"manifest_digest": digest}),
                )
                writes.append(time.perf_counter() - start)
                at = t0 + timedelta(minutes=v)
                change = AliasChange(name, "dev", v, v - 1 or None, v, "promote", "bench", "bench", at)
                registry.move_alias(
                    change=change,
                    expected_revision=v - 1,
                    audit=AuditEntry(name, "bench", "promote", at, "dev", v - 1 or None, v, "bench"),
                )
                registry.add_approval(
                    Approval(name, v, "prod", "bob", at),
                    AuditEntry(name, "bob", "approve", at, "prod", to_version=v),
                )
        envs = ["dev", "staging", "prod"]
        records = args.models * args.versions * 3
        verify_s, checkpoint_s, chains_s = [], [], []
        for run in range(args.runs):
            start = time.perf_counter()
            write_checkpoint(registry, store, root, secrets, t0 + timedelta(days=run + 1), envs)
            checkpoint_s.append(time.perf_counter() - start)
            checkpoint, uri, _ = latest_checkpoint(store, root, secrets)
            start = time.perf_counter()
            report = verify_audit(registry, checkpoint=checkpoint, checkpoint_uri=uri, environments=envs)
            verify_s.append(time.perf_counter() - start)
            assert report.ok
            start = time.perf_counter()
            assert all(verify_chain(n, registry.audit_records(n)).ok for n in registry.list_models())
            chains_s.append(time.perf_counter() - start)
        print(f"{args.models} models x {args.versions} versions = {records} audit records (SQLite, 2 aliases/model)")
        print(f"audited register (incl. head): median {statistics.median(writes[-200:]) * 1000:.2f} ms")
        print(f"audit verify (chains, heads, checkpoint, state): median {statistics.median(verify_s):.3f} s")
        print(f"  per record: {statistics.median(verify_s) / records * 1e6:.1f} us")
        print(f"hash chains alone (what verify did before): median {statistics.median(chains_s):.3f} s")
        print(f"audit checkpoint (verify + sign + write): median {statistics.median(checkpoint_s):.3f} s")


if __name__ == "__main__":
    main()
