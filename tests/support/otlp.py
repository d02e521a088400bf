"""An OTLP/HTTP receiver on 127.0.0.1: what a collector would get from ModelPilot's exporters.

It accepts ``POST /v1/traces`` (and ``/v1/metrics``, ``/v1/logs``) with a protobuf body
(``application/x-protobuf``, gzip or not), decodes it with the ``opentelemetry-proto``
messages the exporter itself uses, and keeps every span as a plain :class:`ReceivedSpan`.
"""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


@dataclass
class ReceivedSpan:
    """One span as the receiver decoded it (ids in lowercase hex)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    status_code: int = 0


class OtlpReceiver:
    """A running receiver: its endpoint (for ``OTEL_EXPORTER_OTLP_ENDPOINT``) and the spans it got."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                status = 200
                if self.path == "/v1/traces":
                    if self.headers.get("Content-Type") != "application/x-protobuf":
                        status = 415
                    else:
                        request = ExportTraceServiceRequest()
                        request.ParseFromString(body)
                        receiver._keep(request)
                elif self.path not in ("/v1/metrics", "/v1/logs"):
                    status = 404
                with receiver._lock:
                    receiver.requests.append((self.path, status))
                reply = ExportTraceServiceResponse().SerializeToString() if status == 200 else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        """The base URL the exporter appends ``/v1/traces`` to."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _keep(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=KINDS.get(span.kind, str(span.kind)),
                            attributes=_attributes(span.attributes),
                            resource=resource,
                            links=[
                                (li.trace_id.hex(), li.span_id.hex(), _attributes(li.attributes)) for li in span.links
                            ],
                            status_code=span.status.code,
                        )
                    )
        with self._lock:
            self.spans.extend(found)

    def received(self) -> list[ReceivedSpan]:
        """Return the spans received so far."""
        with self._lock:
            return list(self.spans)

    def wait_for(self, names: set[str], timeout: float = 10.0) -> list[ReceivedSpan]:
        """Wait until spans of every name in ``names`` arrived; return all spans."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.received()
            if names <= {s.name for s in spans}:
                return spans
            time.sleep(0.05)
        return self.received()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
