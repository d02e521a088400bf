"""What the policy's TTL and conditional read cost per use, against moto's S3 server (all calls over HTTP).

Three ways a warm worker gets its policy, timed with ``time.perf_counter`` around ``loader()``:

* ``within TTL``: the policy read less than ``MODELPILOT_POLICY_TTL_SECONDS`` ago (no request);
* ``after TTL, unchanged``: a conditional ``GetObject`` (``If-None-Match``) answered 304, nothing parsed;
* ``first read / changed``: a ``GetObject`` answered 200 and the YAML parsed and validated.

Prints the median and the 95th percentile of each (milliseconds) and how many times the text was parsed.
Moto answers on the loopback, so the request numbers count work, not AWS latency.

Usage: ``python benchmarks/policy_reads.py [--runs 200]``
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

POLICY = """\
version: 1
environments: [dev, staging, prod]
operators: ["*@example.com", "system:*"]
defaults:
  environments:
    staging:
      thresholds: ["auc >= 0.80", "latency_p95_ms <= 50"]
      no_regression:
        - {metric: auc, greater_is_better: true, min_absolute_change: -0.005}
    prod:
      soak: 1h
      approvals: 1
      approvers: ["*@example.com"]
      require_no_drift_alert: true
      require_slo_healthy: true
  rollback:
    prod: {alarms: ["modelpilot/*"]}
models:
  churn:
    environments:
      prod: {approvals: 2}
"""


def _times(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def _row(name: str, samples: list[float]) -> str:
    p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
    return f"| {name} | {statistics.median(samples):.3f} | {p95:.3f} |"


def main() -> None:
    """Start moto, store a policy in a bucket, time the three ways of getting it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    from modelpilot.adapters.aws.artifacts import S3ArtifactStore
    from modelpilot.policy.loader import PolicyLoader

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="modelpilot.yaml", Body=POLICY.encode())
        store, uri = S3ArtifactStore(s3, sse=None), "s3://models/modelpilot.yaml"

        cached = PolicyLoader(store, conventional=uri, ttl_seconds=3600)
        cached()
        within = _times(cached, args.runs)
        checking = PolicyLoader(store, conventional=uri, ttl_seconds=0)
        checking()
        unchanged = _times(checking, args.runs)
        fresh = _times(lambda: PolicyLoader(store, conventional=uri, ttl_seconds=0)(), args.runs)
    finally:
        server.stop()
    print(f"policy of {len(POLICY)} bytes on moto's S3, {args.runs} runs each (ms)")
    print("| way | median | p95 |")
    print("| --- | ---: | ---: |")
    print(_row("within TTL (no request)", within))
    print(_row("after TTL, unchanged (304, no parse)", unchanged))
    print(_row("first read / changed (200 + parse)", fresh))
    print(f"parses: within TTL {cached.parses}, after TTL unchanged {checking.parses}")


if __name__ == "__main__":
    main()
