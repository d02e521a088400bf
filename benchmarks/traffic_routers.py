"""Cost of one canary split applied by the AWS traffic routers, against moto's server.

A SageMaker endpoint with three variants and a Lambda alias over three published versions are created in
moto; each run applies a changed split (read + update) and then the same split again (read only: the no-op
a repeated tick makes). Prints the median and max wall time (``time.perf_counter``) and the requests sent
per apply. Every request goes over HTTP to moto, so the numbers count round trips more than they predict
AWS latency; a real endpoint update also takes minutes to finish in the background (the router does not
wait for it).

Usage: ``python benchmarks/traffic_routers.py [--runs 30]``
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Counting:
    """Counts the calls made through a boto3 client."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(**kwargs: Any) -> Any:
            self.calls += 1
            return method(**kwargs)

        return call


def main() -> None:
    """Start moto, create an endpoint and an alias, time the routers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        report(f"http://{host}:{port}", args.runs)
    finally:
        server.stop()


def _clients(endpoint: str) -> tuple[Any, Any, Any]:
    import boto3

    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return tuple(session.client(s, endpoint_url=endpoint) for s in ("sagemaker", "lambda", "iam"))  # type: ignore[return-value]


def report(endpoint: str, runs: int) -> None:
    from modelpilot.adapters.aws.traffic import LambdaAliasRouter, SageMakerEndpointRouter
    from modelpilot.domain.canary import TrafficSplit

    sm, lam, iam = _clients(endpoint)
    variants = []
    for v in (1, 2, 3):
        sm.create_model(
            ModelName=f"m{v}", ExecutionRoleArn="arn:aws:iam::123456789012:role/x", PrimaryContainer={"Image": "i"}
        )
        variants.append(
            {"VariantName": f"v{v}", "ModelName": f"m{v}", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
        )
    sm.create_endpoint_config(EndpointConfigName="ep", ProductionVariants=variants)
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="ep")
    role = iam.create_role(RoleName="serve", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(e, c):\n    return 1\n")
    lam.create_function(
        FunctionName="fn", Runtime="python3.12", Role=role, Handler="app.handler", Code={"ZipFile": buffer.getvalue()}
    )
    published = []
    for i in range(3):
        lam.update_function_configuration(FunctionName="fn", Description=f"build {i}")
        published.append(lam.publish_version(FunctionName="fn")["Version"])
    lam.create_alias(FunctionName="fn", Name="prod", FunctionVersion=published[0])

    sm_count, lam_count = Counting(sm), Counting(lam)
    routers = {
        "sagemaker endpoint": (SageMakerEndpointRouter("churn", "prod", "ep", client=sm_count), sm_count),
        "lambda alias": (
            LambdaAliasRouter(
                "churn", "prod", "fn", "prod", versions={"1": published[0], "2": published[1]}, client=lam_count
            ),
            lam_count,
        ),
    }
    print(f"{'router':<20} {'apply':<10} {'median ms':>10} {'max ms':>8} {'requests':>9}")
    for name, (router, counter) in routers.items():
        changed, same, calls = [], [], {"changed": 0, "same": 0}
        for i in range(runs):
            split = TrafficSplit("churn", "prod", 1, 2, 5 + (i % 90))
            before = counter.calls
            start = time.perf_counter()
            router.apply(split)
            changed.append(time.perf_counter() - start)
            calls["changed"] = counter.calls - before
            before = counter.calls
            start = time.perf_counter()
            router.apply(split)  # in place: a repeated tick
            same.append(time.perf_counter() - start)
            calls["same"] = counter.calls - before
        for label, times in (("changed", changed), ("in place", same)):
            key = "changed" if label == "changed" else "same"
            print(
                f"{name:<20} {label:<10} {statistics.median(times) * 1000:>10.2f} "
                f"{max(times) * 1000:>8.2f} {calls[key]:>9}"
            )


if __name__ == "__main__":
    main()
