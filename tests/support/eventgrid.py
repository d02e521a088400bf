"""A local Event Grid topic endpoint on 127.0.0.1 for the Event Grid publisher and notifier.

There is no Event Grid emulator, so this small HTTP server receives exactly what
the ``azure-eventgrid`` SDK client sends and answers as a custom topic does: the
``aeg-sas-key`` header must hold the topic key (else 401), the body must be a
CloudEvents batch (``application/cloudevents-batch+json``, else 400), a request
may carry at most 5,000 events and 1 MB (else 400 / 413, the documented
limits), and every event must have the CloudEvents 1.0 required attributes.
Accepted events are kept, in arrival order, as the JSON the SDK sent.
``fail_with`` makes the topic answer every request with that status instead
(throttling, an outage).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: the documented limits of a custom topic
MAX_REQUEST_BYTES = 1024 * 1024
MAX_EVENTS_PER_REQUEST = 5000
MAX_EVENT_BYTES = 1024 * 1024
REQUIRED = ("id", "source", "type", "specversion")


class EventGridTopic:
    """A running topic endpoint: what it accepted, and every request it answered."""

    def __init__(self, key: str = "topic-key") -> None:
        self.key = key
        self.events: list[dict[str, Any]] = []
        #: (HTTP status answered, events in the request, request bytes) per request
        self.requests: list[tuple[int, int, int]] = []
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        topic = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, count, error = topic._receive(dict(self.headers), body)
                with topic._lock:
                    topic.requests.append((status, count, len(body)))
                reply = b"" if status == 200 else json.dumps({"error": error}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="eventgrid-topic", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """The topic endpoint to give ``EventGridPublisherClient``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/events"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _receive(self, headers: dict[str, str], body: bytes) -> tuple[int, int, dict[str, str]]:
        """Check one request as the service does; keep its events when accepted."""
        if self.fail_with is not None:
            return self.fail_with, 0, {"code": "ServiceUnavailable", "message": "the topic is not available"}
        if headers.get("aeg-sas-key") != self.key:
            return 401, 0, {"code": "Unauthorized", "message": "the request is not authorized"}
        if not headers.get("Content-Type", "").startswith("application/cloudevents-batch+json"):
            return 400, 0, {"code": "BadRequest", "message": "expected a CloudEvents batch"}
        if len(body) > MAX_REQUEST_BYTES:
            return 413, 0, {"code": "RequestEntityTooLarge", "message": f"{len(body)} bytes exceed 1 MB"}
        try:
            batch = json.loads(body)
        except ValueError:
            return 400, 0, {"code": "BadRequest", "message": "the body is not JSON"}
        if not isinstance(batch, list) or not batch:
            return 400, 0, {"code": "BadRequest", "message": "the body must be a non-empty array of events"}
        if len(batch) > MAX_EVENTS_PER_REQUEST:
            return 400, len(batch), {"code": "BadRequest", "message": f"{len(batch)} events exceed 5000"}
        for event in batch:
            if not isinstance(event, dict) or any(not event.get(k) for k in REQUIRED):
                return 400, len(batch), {"code": "BadRequest", "message": "an event lacks a required attribute"}
            if len(json.dumps(event).encode()) > MAX_EVENT_BYTES:
                return 413, len(batch), {"code": "RequestEntityTooLarge", "message": "an event exceeds 1 MB"}
        with self._lock:
            self.events.extend(batch)
        return 200, len(batch), {}
