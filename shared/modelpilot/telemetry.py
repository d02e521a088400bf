"""Traces, metrics and JSON logs.

OpenTelemetry is configured lazily, once per process:

* ``OTEL_EXPORTER_OTLP_ENDPOINT`` set → SDK providers with OTLP/HTTP exporters
  (needs the ``otlp`` extra);
* :func:`configure_in_memory` (tests) → in-memory span exporter and metric reader;
* otherwise → the API's no-op providers, so an unconfigured function pays nothing.

Metric names start with ``modelpilot.``; spans are named after commands. Log
lines are JSON objects carrying ``trace_id`` and ``span_id`` of the active span.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelpilot.config import log_level, otlp_endpoint

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.metrics import Meter
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "InMemoryTelemetry",
    "JsonFormatter",
    "command_span",
    "configure_in_memory",
    "counter_add",
    "current_traceparent",
    "gauge_set",
    "get_logger",
    "histogram_record",
    "logs_to_stderr",
]

SCOPE = "modelpilot"
_lock = threading.Lock()
_configured = False
_instruments: dict[str, Any] = {}
_gauges: dict[str, dict[tuple[tuple[str, Any], ...], float]] = {}


class InMemoryTelemetry:
    """Handles to the in-memory exporters installed by :func:`configure_in_memory`."""

    def __init__(self, spans: InMemorySpanExporter, metrics: InMemoryMetricReader) -> None:
        self.spans = spans
        self.metrics = metrics

    def finished_spans(self) -> list[Any]:
        """Return the spans finished so far."""
        return list(self.spans.get_finished_spans())

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], float]]:
        """Return ``(attributes, value)`` for every data point of metric ``name``."""
        data = self.metrics.get_metrics_data()
        points: list[tuple[dict[str, Any], float]] = []
        if data is None:
            return points
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = getattr(point, "sum", 0.0)
                        points.append((dict(point.attributes or {}), float(value or 0.0)))
        return points

    def clear(self) -> None:
        """Forget finished spans."""
        self.spans.clear()


_in_memory: InMemoryTelemetry | None = None


def configure_in_memory() -> InMemoryTelemetry:
    """Install in-memory exporters (idempotent) and return their handles. For tests."""
    global _configured, _in_memory
    with _lock:
        if _in_memory is not None:
            return _in_memory
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):  # an SDK provider exists already: listen to it too
            current.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _instruments.clear()
        _configured = True
        _in_memory = InMemoryTelemetry(exporter, reader)
        return _in_memory


def _configure() -> None:
    global _configured
    if _configured:
        return
    with _lock:
        if _configured:
            return
        _configured = True
        if not otlp_endpoint():
            return
        try:
            from opentelemetry import metrics, trace
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:  # pragma: no cover - depends on the optional extra
            logging.getLogger(SCOPE).warning("OTLP endpoint set but the 'otlp' extra is not installed")
            return
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]))


def tracer() -> Tracer:
    """Return ModelPilot's tracer (configuring providers on first use)."""
    _configure()
    from opentelemetry import trace

    return trace.get_tracer(SCOPE)


def meter() -> Meter:
    """Return ModelPilot's meter (configuring providers on first use)."""
    _configure()
    from opentelemetry import metrics

    return metrics.get_meter(SCOPE)


def counter_add(name: str, amount: float = 1, attributes: dict[str, Any] | None = None) -> None:
    """Add ``amount`` to the counter ``name`` (created on first use)."""
    inst = _instruments.get(name)
    if inst is None:
        inst = _instruments[name] = meter().create_counter(name)
    inst.add(amount, attributes=_clean(attributes))


def histogram_record(name: str, value: float, attributes: dict[str, Any] | None = None, unit: str = "") -> None:
    """Record ``value`` in the histogram ``name`` (created on first use)."""
    inst = _instruments.get(name)
    if inst is None:
        inst = _instruments[name] = meter().create_histogram(name, unit=unit)
    inst.record(value, attributes=_clean(attributes))


def gauge_set(name: str, value: float, attributes: dict[str, Any] | None = None) -> None:
    """Set the gauge ``name`` for ``attributes`` to ``value`` (last value wins)."""
    attrs = _clean(attributes)
    key = tuple(sorted(attrs.items()))
    with _lock:
        series = _gauges.setdefault(name, {})
        series[key] = value
        if name in _instruments:
            return

    def _observe(_options: Any, _name: str = name) -> Any:
        from opentelemetry.metrics import Observation

        return [Observation(v, dict(k)) for k, v in list(_gauges.get(_name, {}).items())]

    _instruments[name] = meter().create_observable_gauge(name, callbacks=[_observe])


def _clean(attributes: dict[str, Any] | None) -> dict[str, Any]:
    if not attributes:
        return {}
    return {k: v for k, v in attributes.items() if isinstance(v, str | int | float | bool)}


@contextmanager
def command_span(name: str, attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """Run the block in a span named ``name`` with ``attributes``; record exceptions on it."""
    with tracer().start_as_current_span(name, attributes=_clean(attributes)) as span:
        yield span


def current_traceparent() -> str | None:
    """Return the W3C ``traceparent`` of the active span, or None when not tracing."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


@contextmanager
def continue_trace(traceparent: str | None) -> Iterator[None]:
    """Make ``traceparent`` (from an incoming event) the parent of spans in the block."""
    if not traceparent:
        yield
        return
    from opentelemetry import context
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    ctx = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line, with trace and span ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if "opentelemetry" in sys.modules:
            from opentelemetry import trace

            ctx = trace.get_current_span().get_span_context()
            if ctx.is_valid:
                entry["trace_id"] = f"{ctx.trace_id:032x}"
                entry["span_id"] = f"{ctx.span_id:016x}"
        extra = getattr(record, "modelpilot", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@contextmanager
def logs_to_stderr() -> Iterator[None]:
    """Send ModelPilot's logs only to stderr (JSON) inside the block, then restore the handlers.

    The CLI runs its commands in this block so stdout carries nothing but the
    command's output, whatever handlers a host (e.g. Powertools on Lambda) installed.
    """
    root = logging.getLogger(SCOPE)
    saved = (list(root.handlers), root.level, root.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(log_level())
    root.propagate = False
    try:
        yield
    finally:
        root.handlers, level, root.propagate = saved[0], saved[1], saved[2]
        root.setLevel(level)


def get_logger(name: str = SCOPE) -> logging.Logger:
    """Return a logger under ``modelpilot`` that writes JSON lines to stderr.

    The handler is installed once on the ``modelpilot`` logger; level from
    ``MODELPILOT_LOG_LEVEL`` (default WARNING so the CLI stays quiet).
    """
    root = logging.getLogger(SCOPE)
    if not getattr(root, "_modelpilot_configured", False):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.setLevel(log_level())
        root.propagate = False
        root._modelpilot_configured = True  # type: ignore[attr-defined]
    return logging.getLogger(name if name.startswith(SCOPE) else f"{SCOPE}.{name}")
