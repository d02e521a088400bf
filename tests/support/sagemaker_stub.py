"""A SageMaker endpoint on 127.0.0.1 that records ``UpdateModelPackage`` requests and keeps a package's lifecycle.

moto accepts ``UpdateModelPackage`` but drops ``ModelLifeCycle``, so the write-back's lifecycle part is
tested by sending the real request (botocore serialises it and validates it against the SageMaker
service model first) to this server, which speaks SageMaker's JSON protocol (``awsJson1_1``,
``X-Amz-Target: SageMaker.UpdateModelPackage``): it records each request's body, keeps the last
lifecycle and approval status per package, answers ``{"ModelPackageArn": …}``, and refuses a package
it does not hold as SageMaker does (400 ``ValidationException``, "… does not exist"). ``fail`` makes
it answer the next requests with an HTTP status and error code (throttling, 5xx).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.config import Config

from tests.support.aws import CREDENTIALS, REGION


@dataclass
class SageMakerStub:
    """What the server saw and holds: ``requests`` as ``(target, body)``, ``packages`` ARN → last state."""

    client: Any = None
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    packages: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: tuple[int, str] | None = None


@contextmanager
def sagemaker_stub(packages: list[str]) -> Iterator[SageMakerStub]:
    """Yield a stub holding ``packages`` (ARNs) with a SageMaker client bound to it (one attempt per call)."""
    stub = SageMakerStub(packages={arn: {} for arn in packages})
    lock = threading.Lock()

    class Reply(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            target = str(self.headers.get("X-Amz-Target", ""))
            body = json.loads(raw or b"{}")
            with lock:
                stub.requests.append((target, body))
                status, reply = self._answer(target, body)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            if stub.fail is not None:
                status, code = stub.fail
                return status, {"__type": code, "message": "refused by the stub"}
            if target != "SageMaker.UpdateModelPackage":
                return 400, {"__type": "UnknownOperationException", "message": target}
            arn = body.get("ModelPackageArn", "")
            if arn not in stub.packages:
                return 400, {"__type": "ValidationException", "message": f"Model package {arn} does not exist."}
            state = stub.packages[arn]
            for key in ("ModelLifeCycle", "ModelApprovalStatus"):
                if key in body:
                    state[key] = body[key]
            return 200, {"ModelPackageArn": arn}

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
    thread = threading.Thread(target=server.serve_forever, name="sagemaker-stub", daemon=True)
    thread.start()
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    session = boto3.session.Session(region_name=REGION, **CREDENTIALS)
    stub.client = session.client(
        "sagemaker", endpoint_url=f"http://127.0.0.1:{server.server_address[1]}", config=config
    )
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
