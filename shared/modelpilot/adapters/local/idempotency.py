"""SQLite idempotency store for the local backend (and any host without a cloud table)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from modelpilot.exceptions import ConcurrencyConflict
from modelpilot.ports import IdempotencyStore

__all__ = ["SqliteIdempotencyStore"]


class SqliteIdempotencyStore(IdempotencyStore):
    """Claims, results and expiries in one SQLite table."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
                "result TEXT, expires_at REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def begin(self, key: str, *, lock_seconds: int = 900) -> dict[str, Any] | None:
        now = time.time()
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT status, result, expires_at FROM idempotency WHERE key=?", (key,)).fetchone()
            if row is not None and row[2] > now:
                conn.execute("COMMIT")
                if row[0] == "completed":
                    return dict(json.loads(row[1]))
                raise ConcurrencyConflict(f"event {key} is being processed by another run", key=key)
            conn.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, 'in_progress', NULL, ?)", (key, now + lock_seconds)
            )
            conn.execute("COMMIT")
            return None
        finally:
            conn.close()

    def complete(self, key: str, result: dict[str, Any], *, ttl_seconds: int = 7 * 86400) -> None:
        conn = self._connect()
        try:
            conn.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, 'completed', ?, ?)",
                (key, json.dumps(result, default=str), time.time() + ttl_seconds),
            )
        finally:
            conn.close()

    def release(self, key: str) -> None:
        conn = self._connect()
        try:
            conn.execute("DELETE FROM idempotency WHERE key=? AND status='in_progress'", (key,))
        finally:
            conn.close()
