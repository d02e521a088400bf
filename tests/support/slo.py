"""Helpers for the SLO tests: telemetry lines, packages, a local-backend bus with an SLO policy."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from modelpilot.package.builder import write_package


def request_lines(
    model: str,
    env: str,
    version: int,
    start: datetime,
    minutes: int,
    *,
    per_minute: int = 100,
    errors: int = 0,
    slow: int = 0,
    latency_ms: float = 20.0,
    slow_ms: float = 900.0,
) -> list[str]:
    """Return JSON lines: per minute, ``per_minute`` requests, ``errors`` of them failed, ``slow`` slow."""
    lines = []
    for minute in range(minutes):
        at = (start + timedelta(minutes=minute, seconds=30)).isoformat()
        base = {"type": "request", "model": model, "environment": env, "version": version, "time": at}
        ok = per_minute - errors - slow
        for count, status, latency in (
            (ok, 200, latency_ms),
            (errors, 503, latency_ms),
            (slow, 200, slow_ms),
        ):
            if count > 0:
                lines.append(json.dumps({**base, "count": count, "status": status, "latency_ms": latency}))
    return lines


def make_package(root: Path, name: str = "churn", *, seed: int = 0, auc: float = 0.85) -> Path:
    """Write a tiny valid package and return its folder."""
    write_package(
        root,
        files={"model.bin": f"weights-{name}-{seed}".encode()},
        name=name,
        framework="numpy-logreg",
        metrics={"auc": auc},
        lineage={"run_id": f"run-{seed}", "code_revision": "abc"},
        features=[{"name": "x", "type": "numeric", "minimum": 0}],
    )
    return root


SLO_POLICY = """\
version: 1
environments: [staging, prod]
models:
  churn:
    slos:
      - name: availability
        environment: prod
        objective: 0.99
        window: 30d
        sli: {kind: ratio, source: local, good: {query: requests.ok}, total: {query: requests}}
      - name: latency
        environment: prod
        objective: 0.95
        window: 30d
        sli:
          kind: threshold
          source: local
          threshold_ms: 300
          good: {query: requests.fast}
          total: {query: requests}
    rollback:
      prod: {on_slo_page: true, cooldown: 2h}
"""


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


def cli_json(out: str) -> Any:
    """Parse the pretty-printed JSON document a ``--json`` command printed.

    Skips one-line JSON log records another test may have routed to stdout
    (the documents themselves are indented, so they start with a bare ``{`` or ``[``).
    """
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line in ("{", "[", "[]"))
    return json.loads("\n".join(lines[start:]))
