"""16 processes race to register, promote and roll back one alias on the local backend (SQLite)."""

from __future__ import annotations

import multiprocessing as mp
import random
from pathlib import Path

from modelpilot.config import Settings
from modelpilot.package.builder import write_package

PROCESSES = 16
OPERATIONS = 50


def _worker(home: str, index: int, queue: mp.Queue, barrier) -> None:
    try:
        _race(home, index, queue, barrier)
    except BaseException as exc:  # report instead of hanging the parent
        queue.put({"error": repr(exc)})
        raise


def _race(home: str, index: int, queue: mp.Queue, barrier) -> None:
    from modelpilot.bootstrap import bootstrap
    from modelpilot.domain.commands import PromoteModel, RegisterModel, RollbackModel
    from modelpilot.exceptions import ConcurrencyConflict

    bus = bootstrap(Settings(backend="local", home=home), react=False)
    rng = random.Random(index)
    stats = {"registered": 0, "promoted": 0, "rolled_back": 0, "noop": 0, "unchanged": 0, "conflict": 0}
    outcome = bus.handle(RegisterModel(package_uri=str(Path(home) / "packages" / f"p{index}"), actor=f"w{index}"))
    stats[outcome.status] += 1
    barrier.wait(timeout=120)  # every version exists before the alias race starts
    for op in range(OPERATIONS):
        try:
            if rng.random() < 0.6:
                cmd = PromoteModel(
                    model="churn",
                    environment="prod",
                    actor=f"system:w{index}",
                    version=rng.randint(1, PROCESSES),
                    trigger=f"w{index}-op{op}",
                )
            else:
                cmd = RollbackModel(
                    model="churn",
                    environment="prod",
                    actor=f"system:w{index}",
                    reason="race",
                    trigger=f"w{index}-op{op}",
                )
            stats[bus.handle(cmd).status] += 1
        except ConcurrencyConflict:
            stats["conflict"] += 1
    queue.put(stats)


def test_sixteen_processes_keep_alias_history_and_audit_consistent(tmp_path):
    home = tmp_path / "home"
    (home).mkdir()
    (home / "modelpilot.yaml").write_text("environments: [prod]\n")
    for i in range(PROCESSES):
        write_package(
            home / "packages" / f"p{i}",
            files={"model.bin": f"w{i}".encode()},
            name="churn",
            framework="f",
            metrics={"auc": 0.8 + i / 1000},
        )
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    barrier = ctx.Barrier(PROCESSES)
    procs = [ctx.Process(target=_worker, args=(str(home), i, queue, barrier)) for i in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=300) for _ in procs]
    assert not [r for r in results if "error" in r]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    from modelpilot.adapters.local.registry import SqliteRegistry
    from modelpilot.domain.audit import verify_chain

    registry = SqliteRegistry(home / "registry.db")
    versions = [v.version for v in registry.list_versions("churn")]
    assert versions == list(range(1, PROCESSES + 1))  # none duplicated, none skipped
    history = registry.alias_history("churn", "prod")
    assert [c.revision for c in history] == list(range(1, len(history) + 1))
    for prev, nxt in zip(history, history[1:]):
        assert nxt.from_version == prev.to_version
    alias = registry.get_alias("churn", "prod")
    assert alias.revision == len(history) and alias.version == history[-1].to_version
    records = registry.audit_records("churn")
    moves = [r for r in records if r.action in {"promote", "rollback"}]
    assert len(moves) == len(history)
    assert [(r.from_version, r.to_version) for r in moves] == [(c.from_version, c.to_version) for c in history]
    changed = sum(r["promoted"] + r["rolled_back"] for r in results)
    assert changed == len(history)
    assert sum(r["registered"] for r in results) == PROCESSES
    assert verify_chain("churn", records).ok
    assert len(history) > 20  # the race really moved the alias many times
