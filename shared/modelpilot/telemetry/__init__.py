"""Traces, metrics and ECS logs: what ModelPilot tells an observability stack.

* :mod:`.tracing` — one set-up path per runtime (OTLP/HTTP, the Azure Monitor distro, ids
  only, or nothing), delivery and command spans, W3C and X-Ray propagation, flushing;
* :mod:`.metrics` — ``modelpilot.*`` counters, histograms and gauges;
* :mod:`.logs` — Elastic Common Schema JSON lines with trace, invocation and model fields.

Importing this package loads no OpenTelemetry module: spans, metrics and the SDK are
imported on first use, so an unconfigured command pays nothing (cold start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.telemetry.logs import EcsFormatter, get_logger, log_context, log_labels, logs_to_stderr
from modelpilot.telemetry.metrics import counter_add, gauge_set, histogram_record, meter
from modelpilot.telemetry.tracing import (
    attached,
    command_span,
    context_from_traceparent,
    context_from_xray,
    continue_trace,
    current_ids,
    current_traceparent,
    delivery_span,
    flush,
    request_span,
    setup_tracing,
    trace_evidence,
    traceparent_from_xray,
    tracer,
    xray_header,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

__all__ = [
    "EcsFormatter",
    "InMemoryTelemetry",
    "attached",
    "command_span",
    "configure_in_memory",
    "context_from_traceparent",
    "context_from_xray",
    "continue_trace",
    "counter_add",
    "current_ids",
    "current_traceparent",
    "delivery_span",
    "flush",
    "gauge_set",
    "get_logger",
    "histogram_record",
    "log_context",
    "log_labels",
    "logs_to_stderr",
    "meter",
    "request_span",
    "setup_tracing",
    "trace_evidence",
    "traceparent_from_xray",
    "tracer",
    "xray_header",
]


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
    global _in_memory
    if _in_memory is not None:
        return _in_memory
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from modelpilot.telemetry import metrics as _metrics
    from modelpilot.telemetry import tracing as _tracing

    exporter = _tracing.install_in_memory()
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    _metrics.reset_instruments()
    _in_memory = InMemoryTelemetry(exporter, reader)
    return _in_memory
