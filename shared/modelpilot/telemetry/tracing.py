"""Traces: one set-up path per runtime, the spans ModelPilot opens, and trace-context propagation.

:func:`setup_tracing` installs the process's tracer provider once, before any span
is opened, so nothing has to be overridden later:

* ``OTEL_EXPORTER_OTLP_ENDPOINT`` set → an SDK provider exporting OTLP/HTTP (the
  ``otlp`` extra; on Lambda the ADOT collector extension listens on ``localhost:4318``);
* else, on Azure, ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set → the Azure Monitor
  OpenTelemetry distro (imported only then: cold start);
* else, in a function (``aws``, ``azure``) → an SDK provider that exports nothing,
  so spans still have ids for events, replies and log lines to carry;
* else (the CLI) → the API's no-op provider: an unconfigured command pays nothing.

A provider someone else installed first (a host's worker, an instrumentation
wrapper, the tests' in-memory exporter) is kept as it is.

Spans: :func:`delivery_span` is the unit of work of one trigger (kind ``CONSUMER``,
named after the function), :func:`command_span` one command on the bus. A delivery
that carries a W3C ``traceparent`` (an event, a payload, a header, the release an
alarm judges) continues that trace and links to the platform's own context (the
X-Ray header on Lambda, the host's ``traceparent`` on Azure). X-Ray ↔ W3C goes
through ``opentelemetry-propagator-aws-xray``.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from modelpilot.config import Settings, azure_monitor_connection_string, otlp_endpoint
from modelpilot.telemetry.context import log_labels

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from opentelemetry.context import Context
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "Runtime",
    "attached",
    "clean_attributes",
    "command_span",
    "context_from_traceparent",
    "context_from_xray",
    "current_ids",
    "current_traceparent",
    "delivery_span",
    "flush",
    "request_span",
    "setup_tracing",
    "trace_evidence",
    "traceparent_from_xray",
    "tracer",
    "transaction_id",
    "xray_header",
]

SCOPE = "modelpilot"
#: where the process runs: the CLI (and tests), a Lambda function, an Azure function
Runtime = Literal["cli", "aws", "azure"]
#: what :func:`setup_tracing` installed (for the docs, the logs and the tests)
Installed = Literal["otlp", "azure_monitor", "ids_only", "none", "existing"]

_lock = threading.RLock()
_installed: Installed | None = None
#: the id of the local root span of the work in progress (ECS ``transaction.id``)
_transaction: contextvars.ContextVar[str | None] = contextvars.ContextVar("modelpilot_transaction", default=None)


def _resource(runtime: Runtime) -> Any:
    from opentelemetry.sdk.resources import Resource

    from modelpilot import __version__

    attributes: dict[str, Any] = {
        "service.name": Settings.from_env().service_name,
        "service.namespace": "modelpilot",
        "service.version": __version__,
    }
    if runtime != "cli":
        attributes["cloud.provider"] = runtime
    return Resource.create(attributes)


def setup_tracing(runtime: Runtime = "cli", *, azure_monitor: Callable[[Any], None] | None = None) -> Installed:
    """Install the tracer (and meter) provider of this process, once; return what was installed.

    Every runtime calls this before it opens a span; later calls return the first answer.
    ``azure_monitor`` (the Azure host's: the distro is an Azure SDK, imported only at the
    edge) configures the Azure Monitor distro with the resource it is given.
    """
    global _installed
    if _installed is not None and not _upgrade(runtime):
        return _installed
    with _lock:
        if _installed is not None and not _upgrade(runtime):
            return _installed
        _installed = _install(runtime, azure_monitor)
        return _installed


def _upgrade(runtime: Runtime) -> bool:
    """A function runtime may install a provider where the CLI's set-up installed none (nothing is overridden)."""
    return _installed == "none" and runtime != "cli"


def _install(runtime: Runtime, azure_monitor: Callable[[Any], None] | None) -> Installed:
    from opentelemetry import trace

    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return "existing"
    if otlp_endpoint():
        try:
            _install_otlp(runtime)
        except ImportError:  # pragma: no cover - depends on the optional extra
            logging.getLogger(SCOPE).warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the 'otlp' extra is missing")
        else:
            return "otlp"
    if runtime == "azure" and azure_monitor is not None and azure_monitor_connection_string():
        try:
            azure_monitor(_resource(runtime))
        except ImportError:  # pragma: no cover - depends on the azure extra
            logging.getLogger(SCOPE).warning("APPLICATIONINSIGHTS_CONNECTION_STRING is set but the distro is missing")
        else:
            return "azure_monitor"
    if runtime == "cli":
        return "none"
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider(resource=_resource(runtime)))
    return "ids_only"


def _install_otlp(runtime: Runtime) -> None:
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = _resource(runtime)
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    reader = PeriodicExportingMetricReader(OTLPMetricExporter())
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))


def install_in_memory() -> InMemorySpanExporter:
    """Make every span also go to an in-memory exporter (tests); install an SDK provider if there is none."""
    global _installed
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    with _lock:
        exporter = InMemorySpanExporter()
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):  # an SDK provider exists already: listen to it too
            current.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            provider = TracerProvider(resource=_resource("cli"))
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
        _installed = _installed or "existing"
        return exporter


def flush(timeout_millis: int = 5000) -> None:
    """Export what the providers still hold (a Lambda is frozen once it returns; call before replying)."""
    if _installed in (None, "none"):
        return
    from opentelemetry import metrics, trace

    for provider in (trace.get_tracer_provider(), metrics.get_meter_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if force_flush is not None:
            force_flush(timeout_millis)


def tracer() -> Tracer:
    """Return ModelPilot's tracer (the CLI's set-up runs on first use)."""
    setup_tracing()
    from opentelemetry import trace

    return trace.get_tracer(SCOPE)


def clean_attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    """Keep the attributes OpenTelemetry accepts (str, int, float, bool); drop None and the rest."""
    if not attributes:
        return {}
    return {k: v for k, v in attributes.items() if isinstance(v, str | int | float | bool)}


# -- propagation -----------------------------------------------------------------------------
def context_from_traceparent(traceparent: str | None) -> Context | None:
    """Return the context a W3C ``traceparent`` names, or None when it is absent or malformed."""
    if not traceparent:
        return None
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    ctx = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def context_from_xray(header: str | None) -> Context | None:
    """Return the context of an X-Ray trace header (``Root=1-…;Parent=…;Sampled=1``), or None."""
    if not header:
        return None
    from opentelemetry import trace
    from opentelemetry.propagators.aws import AwsXRayPropagator

    ctx = AwsXRayPropagator().extract({"X-Amzn-Trace-Id": header})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def _traceparent_of(ctx: Context | None) -> str | None:
    if ctx is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=ctx)
    return carrier.get("traceparent")


def traceparent_from_xray(header: str | None) -> str | None:
    """Return the W3C ``traceparent`` of an X-Ray trace header (same trace, same parent), or None."""
    return _traceparent_of(context_from_xray(header))


def xray_header(traceparent: str | None) -> str | None:
    """Return the X-Ray trace header of a W3C ``traceparent`` (EventBridge's ``TraceHeader``), or None."""
    ctx = context_from_traceparent(traceparent)
    if ctx is None:
        return None
    from opentelemetry.propagators.aws import AwsXRayPropagator

    carrier: dict[str, str] = {}
    AwsXRayPropagator().inject(carrier, context=ctx)
    return carrier.get("X-Amzn-Trace-Id")


def current_traceparent() -> str | None:
    """Return the W3C ``traceparent`` of the active span, or None when not tracing."""
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def current_ids() -> tuple[str, str] | None:
    """Return ``(trace id, span id)`` of the active span in hex, or None (without importing OpenTelemetry)."""
    import sys

    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"


def transaction_id() -> str | None:
    """Return the span id of the delivery (or request) in progress: ECS ``transaction.id``."""
    return _transaction.get()


def trace_evidence() -> dict[str, str]:
    """Return ``{"traceparent": …}`` of the active span for an audit record (``{}`` when not tracing).

    The incident timeline reads it back, and an alarm continues the trace of the
    release it judges (:func:`modelpilot.service.incident.release_traceparent`).
    """
    traceparent = current_traceparent()
    return {"traceparent": traceparent} if traceparent else {}


@contextmanager
def attached(ctx: Context | None) -> Iterator[None]:
    """Make ``ctx`` (the platform's trace context) the current context inside the block."""
    if ctx is None:
        yield
        return
    from opentelemetry import context

    token = context.attach(ctx)
    try:
        yield
    finally:
        context.detach(token)


@contextmanager
def continue_trace(traceparent: str | None) -> Iterator[None]:
    """Make ``traceparent`` (from an incoming event) the parent of spans in the block."""
    with attached(context_from_traceparent(traceparent)):
        yield


# -- spans ------------------------------------------------------------------------------------
@contextmanager
def _entry_span(name: str, kind: str, traceparent: str | None, attributes: dict[str, Any] | None) -> Iterator[Span]:
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind

    tr = tracer()
    ambient = trace.get_current_span().get_span_context()
    parent = context_from_traceparent(traceparent)
    kwargs: dict[str, Any] = {}
    if parent is not None:
        kwargs["context"] = parent
        carried = trace.get_current_span(parent).get_span_context()
        if ambient.is_valid and ambient.trace_id != carried.trace_id:
            kwargs["links"] = [Link(ambient, {"modelpilot.link": "platform"})]
    span_kind = SpanKind.SERVER if kind == "server" else SpanKind.CONSUMER
    with tr.start_as_current_span(name, kind=span_kind, attributes=clean_attributes(attributes), **kwargs) as span:
        ctx = span.get_span_context()
        token = _transaction.set(f"{ctx.span_id:016x}" if ctx.is_valid else None)
        try:
            yield span
        finally:
            _transaction.reset(token)


@contextmanager
def delivery_span(
    name: str, traceparent: str | None = None, attributes: dict[str, Any] | None = None
) -> Iterator[Span]:
    """Run one delivery of a trigger in a ``CONSUMER`` span named ``name`` (the function).

    With ``traceparent`` the span continues that trace and links to the current
    context (the platform's); without, it is a child of the current context.
    """
    with _entry_span(name, "consumer", traceparent, attributes) as span:
        yield span


@contextmanager
def request_span(name: str, traceparent: str | None = None, attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """Like :func:`delivery_span`, for an operator API request (kind ``SERVER``)."""
    with _entry_span(name, "server", traceparent, attributes) as span:
        yield span


@contextmanager
def command_span(name: str, attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """Run the block in a span named ``name`` with ``attributes``; record exceptions on it.

    The model, environment and version among the attributes (``modelpilot.*``) label
    every log line written inside the block.
    """
    attrs = clean_attributes(attributes)
    labels = {k.removeprefix("modelpilot."): v for k, v in attrs.items() if k.startswith("modelpilot.")}
    with log_labels(**labels), tracer().start_as_current_span(name, attributes=attrs) as span:
        yield span
