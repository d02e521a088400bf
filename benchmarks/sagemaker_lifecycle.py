"""Per-event latency of the SageMaker registry function with lifecycle stages, against moto's server (warm).

For each run, a new model package (in moto's SageMaker) and its ModelPilot package go through:
the approval (register + promote to dev + write-back), a lifecycle stage ``Staging: Approved`` (the
registration answered from the idempotency store, then the stage request: promote to staging +
write-back), and the write-back's echo (recognised, nothing more). Median and max wall time of one
invocation, ``time.perf_counter`` around ``handler(event, context)``; every DynamoDB, S3, EventBridge,
SNS and SageMaker request goes over HTTP to moto, so the numbers count requests more than they
predict AWS latency. The write-back is one ``UpdateModelPackage`` per version written.

Usage: ``python benchmarks/sagemaker_lifecycle.py [--runs 20]``
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POLICY = """\
version: 1
environments: [dev, staging, prod]
defaults:
  sagemaker:
    stages: {Development: dev, Staging: staging, Production: prod}
    approval_status: true
"""


def main() -> None:
    """Start moto, create the stack's resources, time the SageMaker function."""
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
    try:
        report(f"http://{host}:{port}", args.runs)
    finally:
        server.stop()


def report(endpoint: str, runs: int) -> None:
    """Create resources like template.yaml, then time the three deliveries ``runs`` times."""
    from modelpilot import bootstrap
    from modelpilot.package.builder import write_package
    from tests.support import aws, aws_events

    stack = aws.benchmark_stack(endpoint)
    sagemaker = aws.client("sagemaker", endpoint)
    bucket = stack.bucket
    aws.put_policy(stack, POLICY)
    bootstrap.reset()
    function = aws_events.handler("sagemaker_registry")
    timings: dict[str, list[float]] = {}

    def timed(name: str, event: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        reply: dict[str, Any] = function(event, aws_events.LambdaContext())
        timings.setdefault(name, []).append((time.perf_counter() - start) * 1000)
        return reply

    def change(arn: str, package: str, lifecycle: dict[str, str] | None, modified: str) -> dict[str, Any]:
        event: dict[str, Any] = aws_events.load("sagemaker_model_package_lifecycle_modelpilot.json")
        event["resources"] = [arn]
        event["detail"].update(ModelPackageArn=arn, LastModifiedTime=modified)
        event["detail"]["CustomerMetadataProperties"] = {"modelpilot:package": package}
        if lifecycle is None:
            del event["detail"]["ModelLifeCycle"]
        else:
            event["detail"]["ModelLifeCycle"] = lifecycle
        return event

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
            package = f"s3://{bucket}/{key.rsplit('/', 1)[0]}"
            sagemaker.create_model_package_group(ModelPackageGroupName=model)
            arn = sagemaker.create_model_package(
                ModelPackageGroupName=model,
                ModelApprovalStatus="Approved",
                InferenceSpecification={
                    "Containers": [{"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
            )["ModelPackageArn"]
            approved = timed("approved: register + dev + write-back", change(arn, package, None, "t0"))
            assert approved["promotion"]["status"] == "promoted", approved
            staging = {"Stage": "Staging", "StageStatus": "Approved", "StageDescription": "signed off"}
            staged = timed("stage Staging approved: staging + write-back", change(arn, package, staging, "t1"))
            assert staged["results"][1]["follow_ups"][0]["written"], staged
            written = staged["results"][1]["follow_ups"][0]["written"][0]
            assert written["stage"] == "Staging"
            # what the write-back wrote comes back in the next state change: the marker names its stage and status
            echo = {**staging, "StageDescription": f"[modelpilot Staging/Approved] {model} v1 promoted to staging"}
            assert "results" not in timed("the write-back's echo: nothing", change(arn, package, echo, "t2"))
    print(f"SageMaker registry function on moto's server, warm, {runs} runs each")
    print(f"{'delivery':<48} {'median ms':>10} {'max ms':>8}   (max includes the first, importing call)")
    for name, values in timings.items():
        print(f"{name:<48} {statistics.median(values):>10.1f} {max(values):>8.1f}")


if __name__ == "__main__":
    main()
