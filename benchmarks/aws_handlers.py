"""Per-event latency of the AWS Lambda handlers against moto's server (warm container, all calls over HTTP).

For each handler: the median and max wall time of one invocation, measured with
``time.perf_counter`` around ``handler(event, context)`` (a warm Lambda: the bus and
clients already built). Numbers include every DynamoDB, S3, EventBridge and SNS
request the handler makes, plus the idempotency table round trips, so they count
requests more than they predict AWS latency.

Usage: ``python benchmarks/aws_handlers.py [--runs 20]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    """Start moto, create the stack's resources, time each handler."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        report(endpoint, args.runs)
    finally:
        server.stop()


def report(endpoint: str, runs: int) -> None:
    """Create resources like template.yaml, then time every handler ``runs`` times."""
    from modelpilot import bootstrap
    from modelpilot.package.builder import write_package
    from tests.support import aws, aws_events

    stack = aws.benchmark_stack(endpoint)
    bucket = stack.bucket
    aws.put_policy(stack)
    bootstrap.reset()
    upload, alarm = aws_events.handler("model_upload"), aws_events.handler("alarm")
    api = aws_events.handler("operator_api")
    timings: dict[str, list[float]] = {}

    def timed(name: str, fn, event) -> dict:
        start = time.perf_counter()
        reply = fn(event, aws_events.LambdaContext())
        timings.setdefault(name, []).append((time.perf_counter() - start) * 1000)
        return reply

    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            model = f"bench{i}"
            root = write_package(
                Path(tmp) / model,
                files={"model.bin": uuid.uuid4().bytes * 64},
                name=model,
                framework="numpy-logreg",
                metrics={"auc": 0.9},
            ).parent
            key = aws.upload_package(stack, root, f"models/{model}/v1")
            event = aws_events.s3_notification(bucket, key, etag=f"etag-{i}")
            assert timed("upload: register + promote", upload, event)["results"][0]["status"] == "registered"
            timed("upload: duplicate delivery", upload, event)
            from modelpilot.bootstrap import get_bus
            from modelpilot.domain.commands import PromoteModel

            get_bus().handle(PromoteModel(model=model, environment="prod", actor="user:bench", version=1))
            timed(
                "alarm: HandleAlarm (nothing to roll back to)",
                alarm,
                aws_events.alarm_change(f"modelpilot/{model}/prod/errors", timestamp=f"2026-11-26T04:{i:02d}:00Z"),
            )
            timed("api: GET /models/{model}/status", api, aws_events.http_request("GET", f"/models/{model}/status"))
    print(f"AWS handlers on moto's server, warm, {runs} runs each")
    print(f"{'handler':<48} {'median ms':>10} {'max ms':>8}   (max includes the first, importing call)")
    for name, values in timings.items():
        print(f"{name:<48} {statistics.median(values):>10.1f} {max(values):>8.1f}")


if __name__ == "__main__":
    main()
