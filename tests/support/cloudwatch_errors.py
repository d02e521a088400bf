"""A CloudWatch endpoint on 127.0.0.1 that answers every request with one HTTP error.

moto's server has no way to make CloudWatch throttle or fail, so the tests that
need CloudWatch to refuse a call send the real request over HTTP to this
server instead. Its replies have the shape of CloudWatch's JSON protocol
(``awsJson1_0``, the one botocore speaks to it): the status code, a JSON body with
``__type`` and ``message``, and the error code of the former query API in the
``x-amzn-query-error`` header (``Throttling;Sender``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
from botocore.config import Config

from tests.support.aws import CREDENTIALS, REGION


@contextmanager
def failing_cloudwatch(status: int, code: str | None) -> Iterator[tuple[Any, list[str]]]:
    """Yield ``(CloudWatch client, operations requested)`` for a server answering ``status`` with error ``code``.

    The operations are the requests' ``X-Amz-Target`` headers. The client makes one
    attempt per call (no botocore retries), so each call is one request.
    """
    targets: list[str] = []

    class Reply(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            targets.append(str(self.headers.get("X-Amz-Target", "")))
            body = json.dumps(
                {"__type": f"com.amazonaws.cloudwatch#{code}", "message": "refused"} if code else {}
            ).encode()
            self.send_response(status)
            if code:
                self.send_header("x-amzn-query-error", f"{code};Sender")
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
    thread = threading.Thread(target=server.serve_forever, name="failing-cloudwatch", daemon=True)
    thread.start()
    try:
        yield cloudwatch_client(f"http://127.0.0.1:{server.server_address[1]}"), targets
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def cloudwatch_client(endpoint: str, region: str = REGION) -> Any:
    """Return a CloudWatch client for ``endpoint`` that never retries and gives up connecting after 2 s."""
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    session = boto3.session.Session(region_name=region, **CREDENTIALS)
    return session.client("cloudwatch", endpoint_url=endpoint, config=config)


def closed_port() -> str:
    """Return an endpoint on 127.0.0.1 that nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
