"""What the blueprints share: trigger objects → plain payloads, the bus, JSON replies, tracing and logs.

Every invocation runs in :func:`invocation`: the process's tracer provider is set up first
(``telemetry.setup_tracing("azure")``: OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set,
else the Azure Monitor distro when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is), the host's
trace context (``context.trace_context.trace_parent``) is the parent of the work, every log
line carries the invocation's ECS fields, and spans are flushed before the function returns.
An event that carries its own ``traceparent`` (the CloudEvents extension) continues that
trace; an operator request continues its ``traceparent`` header.
"""

from __future__ import annotations

import functools
import json
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import azure.functions as func

from modelpilot import telemetry
from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.azure.envelope import parse_envelope
from modelpilot.entrypoints.azure.timers import timer_command
from modelpilot.service.dispatch import Delivery, dispatch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from modelpilot.entrypoints.azure.envelope import Envelope
    from modelpilot.entrypoints.azure.events import Translation

__all__ = [
    "event_payload",
    "http_entry",
    "invocation",
    "json_response",
    "run_event",
    "run_timer",
    "run_translation",
]

#: the FaaS trigger type (OpenTelemetry ``faas.trigger``) of each kind of function
_TRIGGERS = {"event": "pubsub", "blob": "datasource", "timer": "timer", "http": "http"}
_cold = [True]


def _azure_monitor(resource: Any) -> None:
    """Configure the Azure Monitor OpenTelemetry distro (imported only when its connection string is set)."""
    from azure.monitor.opentelemetry import configure_azure_monitor

    from modelpilot.config import azure_monitor_connection_string

    configure_azure_monitor(
        connection_string=azure_monitor_connection_string(),
        logger_name="modelpilot",
        resource=resource,
        enable_live_metrics=False,
    )


@contextmanager
def invocation(function: str, context: Any, *, trigger: str, correlation_id: str | None = None) -> Iterator[None]:
    """Run one invocation: tracing set up, the host's trace context current, ECS log fields, a flush at the end."""
    telemetry.setup_tracing("azure", azure_monitor=_azure_monitor)
    trace_context = getattr(context, "trace_context", None)
    host_parent = getattr(trace_context, "trace_parent", None)
    invocation_id = getattr(context, "invocation_id", None)
    cold, _cold[0] = _cold[0], False
    fields = {
        "cloud.provider": "azure",
        "faas.name": function,
        "faas.execution": invocation_id,
        "faas.coldstart": cold,
        "faas.trigger.type": _TRIGGERS.get(trigger, "other"),
        "labels.correlation_id": correlation_id or invocation_id,
    }
    try:
        with (
            telemetry.attached(telemetry.context_from_traceparent(host_parent)),
            telemetry.log_context(**fields),
        ):
            yield
    finally:
        telemetry.flush()


def event_payload(event: Any) -> dict[str, Any]:
    """Return the wire JSON of a ``func.EventGridEvent`` or ``func.CloudEvent``."""
    if isinstance(event, func.CloudEvent):
        when = event.time.isoformat() if event.time else None
        return {
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "specversion": event.specversion,
            "subject": event.subject or "",
            "time": when,
            "data": event.get_json(),
            **(event.extension_attrs or {}),
        }
    when = event.event_time.isoformat() if event.event_time else None
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject or "",
        "eventType": event.event_type,
        "eventTime": when,
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


def run_translation(
    function: str,
    source: str,
    translate: Callable[[], Translation | None],
    traceparent: str | None = None,
    context: Any = None,
    *,
    trigger: str = "blob",
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """Handle the command ``translate`` returns once per business key (``modelpilot.service.dispatch``)."""

    def delivery() -> Delivery | None:
        done = translate()
        return None if done is None else Delivery(source, done.command, done.key, traceparent=traceparent)

    with invocation(function, context, trigger=trigger, correlation_id=correlation_id):
        return dispatch(get_bus(), delivery, function=function, source=source)


def run_event(
    event: Any, function: str, translate: Callable[[Envelope], Translation | None], context: Any = None
) -> dict[str, Any]:
    """Parse an Event Grid delivery (either schema) and dispatch its command once."""
    payload = event_payload(event)
    source = f"{payload.get('type') or payload.get('eventType')} {payload.get('id')}"
    traceparent = payload.get("traceparent")
    event_id = payload.get("id")
    return run_translation(
        function,
        source,
        lambda: translate(parse_envelope(payload)),
        traceparent if isinstance(traceparent, str) else None,
        context,
        trigger="event",
        correlation_id=event_id if isinstance(event_id, str) else None,
    )


def run_timer(kind: str, function: str, timer: func.TimerRequest, context: Any) -> None:
    """Dispatch timer ``kind``'s command (drift, slo, canary) once for the minute it fired in."""
    with invocation(function, context, trigger="timer"):
        bus = get_bus()
        now = bus.services.clock()
        dispatch(
            bus, lambda: timer_command(kind, now, past_due=timer.past_due), function=function, source=f"timer {kind}"
        )


def http_entry(
    function: str,
) -> Callable[[Callable[[func.HttpRequest], func.HttpResponse]], Callable[..., func.HttpResponse]]:
    """Run an operator API route in one ``SERVER`` span that continues the request's ``traceparent`` header
    (else the host's context), with the invocation's log fields and a flush (see :func:`invocation`)."""

    def wrap(route: Callable[[func.HttpRequest], func.HttpResponse]) -> Callable[..., func.HttpResponse]:
        @functools.wraps(route)
        def entry(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
            headers = {k.lower(): v for k, v in req.headers.items()}
            attributes = {"faas.name": function, "http.request.method": req.method, "url.full": req.url}
            request_id = headers.get("x-request-id") or headers.get("request-id")
            with (
                invocation(function, context, trigger="http", correlation_id=request_id),
                telemetry.request_span(function, headers.get("traceparent"), attributes) as span,
            ):
                response = route(req)
                span.set_attribute("http.response.status_code", response.status_code)
                return response

        # the worker reads the parameters: the route's request, and the host's invocation context
        del entry.__wrapped__
        return entry

    return wrap


def json_response(data: Any, status: int = 200) -> func.HttpResponse:
    """Return ``data`` as a JSON HTTP response."""
    return func.HttpResponse(
        json.dumps(data, default=str, sort_keys=True), status_code=status, mimetype="application/json"
    )
