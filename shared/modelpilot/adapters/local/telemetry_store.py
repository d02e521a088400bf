"""SQLite telemetry store: request outcomes and labelled feedback, and a :class:`MetricsSource` over them.

Fed by ``modelpilot telemetry ingest FILE`` with JSON lines, one request (or
``count`` identical requests) or one labelled prediction per line::

    {"type": "request", "model": "churn", "environment": "prod", "version": 4,
     "time": "2026-11-26T10:00:00Z", "status": 200, "latency_ms": 41.5, "count": 1}
    {"type": "feedback", "model": "churn", "environment": "prod", "version": 4,
     "time": "2026-11-26T10:00:00Z", "prediction": 1, "label": 0}

Ingest is all-or-nothing (a bad line raises ``DataError`` naming it, nothing is
written) and idempotent: each line gets a key (its ``id`` field, else its digest
and occurrence), so ingesting a file twice counts it once.

Series an SLI can name: ``requests``, ``requests.ok`` (status < 500),
``requests.error``, ``requests.fast`` / ``requests.slow`` (latency ≤ / >
``threshold_ms``), ``feedback``, ``feedback.correct``, and per-timeslice values
``feedback.accuracy`` and ``feedback.mae``. A window without any row is reported
as missing data (``points == 0``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelpilot.exceptions import DataError, InvalidInput, describe_validation
from modelpilot.ports import EventCounts, MetricsSource, TelemetryIngest

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelpilot.ports import SliQuery

__all__ = ["SqliteTelemetryStore", "TelemetryLine"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, environment TEXT NOT NULL, version INTEGER,
    ts REAL NOT NULL, n INTEGER NOT NULL, error INTEGER NOT NULL, latency_ms REAL);
CREATE INDEX IF NOT EXISTS requests_window ON requests (model, environment, ts);
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, environment TEXT NOT NULL, version INTEGER,
    ts REAL NOT NULL, n INTEGER NOT NULL, correct INTEGER, abs_error REAL);
CREATE INDEX IF NOT EXISTS feedback_window ON feedback (model, environment, ts);
"""

_REQUEST_SERIES = {
    "requests": "1=1",
    "requests.ok": "error=0",
    "requests.error": "error=1",
    "requests.fast": "latency_ms <= :threshold",
    "requests.slow": "latency_ms > :threshold",
}
_FEEDBACK_SERIES = {"feedback": "1=1", "feedback.correct": "correct=1"}


class TelemetryLine(BaseModel):
    """One line of a telemetry file (validated at the edge)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["request", "feedback"]
    model: str = Field(min_length=1)
    environment: str = Field(min_length=1)
    version: int | None = None
    time: datetime
    count: int = Field(default=1, ge=1)
    id: str | None = None
    status: int | None = None
    error: bool | None = None
    latency_ms: float | None = Field(default=None, ge=0)
    prediction: float | str | None = None
    label: float | str | None = None
    correct: bool | None = None


class SqliteTelemetryStore(MetricsSource, TelemetryIngest):
    """Request and feedback telemetry in one SQLite file; counts SLI events over windows.

    The file is created on first use, so wiring the store costs nothing to a
    process that never reads telemetry.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=30)) as conn, conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
            self._ready = True
        return sqlite3.connect(self.path, timeout=30)

    # -- ingest ---------------------------------------------------------------------
    def ingest_file(self, path: str | Path) -> dict[str, int]:
        """Ingest a JSON-lines file; return how many requests/feedback lines were new."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot read telemetry file {path}: {exc.strerror}", source=str(path)) from None
        return self.ingest(text.splitlines(), source=str(path))

    def ingest(self, lines: Iterable[str], *, source: str = "<telemetry>") -> dict[str, int]:
        """Validate every line, then write them in one transaction (duplicates ignored)."""
        requests: list[tuple[Any, ...]] = []
        feedback: list[tuple[Any, ...]] = []
        seen: dict[str, int] = {}
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            line = _parse(raw, number, source)
            digest = hashlib.sha256(raw.strip().encode()).hexdigest()[:32]
            seen[digest] = seen.get(digest, 0) + 1
            key = line.id or f"{digest}#{seen[digest]}"
            ts = line.time.timestamp()
            if line.type == "request":
                requests.append(
                    (
                        key,
                        line.model,
                        line.environment,
                        line.version,
                        ts,
                        line.count,
                        int(_is_error(line)),
                        line.latency_ms,
                    )
                )
            else:
                correct, abs_error = _judge(line, number, source)
                feedback.append((key, line.model, line.environment, line.version, ts, line.count, correct, abs_error))
        with self._lock, closing(self._connect()) as conn, conn:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO requests VALUES (?,?,?,?,?,?,?,?)", requests)
            new_requests = conn.total_changes - before
            conn.executemany("INSERT OR IGNORE INTO feedback VALUES (?,?,?,?,?,?,?,?)", feedback)
            new_feedback = conn.total_changes - before - new_requests
        return {
            "requests": new_requests,
            "feedback": new_feedback,
            "duplicates": len(requests) + len(feedback) - new_requests - new_feedback,
        }

    # -- MetricsSource --------------------------------------------------------------
    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        """Count good and total events of ``query`` in ``[start, end)``."""
        params = query.params or {}
        labels = params.get("labels") or {}
        if "model" not in labels or "environment" not in labels:
            raise InvalidInput("a local SLI query needs the model and environment labels")
        where = "model=:model AND environment=:environment AND ts >= :start AND ts < :end"
        if labels.get("version") is not None:
            where += " AND version=:version"
        args = {
            "model": labels["model"],
            "environment": labels["environment"],
            "version": labels.get("version"),
            "start": start.timestamp(),
            "end": end.timestamp(),
            "threshold": params.get("threshold_ms"),
        }
        with closing(self._connect()) as conn:
            if query.kind == "timeslice":
                return _timeslices(conn, query, where, args)
            total, points = self._sum(conn, query.total, where, args)
            if query.good is not None:
                good, _ = self._sum(conn, query.good, where, args)
            else:
                bad, _ = self._sum(conn, query.bad or "", where, args)
                good = total - bad
        return EventCounts(good=good, total=total, points=points)

    def _sum(self, conn: sqlite3.Connection, series: str, where: str, args: dict[str, Any]) -> tuple[float, int]:
        table, condition = _series(series)
        if ":threshold" in condition and args["threshold"] is None:
            raise InvalidInput(f"series {series} needs threshold_ms")
        row = conn.execute(
            f"SELECT COALESCE(SUM(n), 0), COUNT(*) FROM {table} "  # noqa: S608 - names from a fixed map
            f"WHERE {where} AND {condition}",
            args,
        ).fetchone()
        return float(row[0]), int(row[1])


def _series(name: str) -> tuple[str, str]:
    if name in _REQUEST_SERIES:
        return "requests", _REQUEST_SERIES[name]
    if name in _FEEDBACK_SERIES:
        return "feedback", _FEEDBACK_SERIES[name]
    known = ", ".join([*_REQUEST_SERIES, *_FEEDBACK_SERIES, "feedback.accuracy", "feedback.mae"])
    raise InvalidInput(f"unknown local telemetry series {name!r}; use one of {known}")


def _timeslices(conn: sqlite3.Connection, query: SliQuery, where: str, args: dict[str, Any]) -> EventCounts:
    params = query.params or {}
    size = int(params.get("slice_seconds") or 3600)
    column = {"feedback.accuracy": "correct", "feedback.mae": "abs_error"}.get(query.total)
    if column is None:
        raise InvalidInput(f"a timeslice SLI reads feedback.accuracy or feedback.mae, not {query.total!r}")
    rows = conn.execute(
        f"SELECT CAST(ts / {size} AS INTEGER) AS slice, SUM({column} * n) * 1.0 / SUM(n) FROM feedback "  # noqa: S608
        f"WHERE {where} AND {column} IS NOT NULL GROUP BY slice",
        args,
    ).fetchall()
    limit, op = float(params["limit"]), params["op"]
    good = sum(1 for _s, value in rows if (value >= limit if op == ">=" else value <= limit))
    return EventCounts(good=float(good), total=float(len(rows)), points=len(rows))


def _parse(raw: str, number: int, source: str) -> TelemetryLine:
    try:
        line = TelemetryLine.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{source}:{number}: not JSON ({exc.msg}); nothing was ingested", source=source, line=number
        ) from None
    except ValidationError as exc:
        where, message, _ = describe_validation(exc, root="<line>")
        raise DataError(
            f"{source}:{number}: invalid {where}: {message}; nothing was ingested",
            source=source,
            line=number,
        ) from None
    if line.time.tzinfo is None:
        raise DataError(
            f"{source}:{number}: time needs a timezone (e.g. 2026-11-26T10:00:00Z); nothing was ingested",
            source=source,
            line=number,
        )
    return line


def _is_error(line: TelemetryLine) -> bool:
    if line.error is not None:
        return line.error
    return line.status is not None and line.status >= 500


def _judge(line: TelemetryLine, number: int, source: str) -> tuple[int | None, float | None]:
    if line.correct is not None:
        return int(line.correct), None
    if line.prediction is None or line.label is None:
        raise DataError(
            f"{source}:{number}: feedback needs 'correct' or both 'prediction' and 'label'",
            source=source,
            line=number,
        )
    if isinstance(line.prediction, str) or isinstance(line.label, str):
        return int(str(line.prediction) == str(line.label)), None
    return int(line.prediction == line.label), abs(float(line.prediction) - float(line.label))
