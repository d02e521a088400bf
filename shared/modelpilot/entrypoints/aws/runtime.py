"""The Lambda side of every AWS handler: Powertools Logger and Metrics, tracing, the one error policy.

``lambda_entry`` wraps a handler ``(event, context) -> list[Delivery] | Delivery`` so that

* each delivery runs through :func:`modelpilot.service.dispatch.handle_once` (once per
  business key, on the ``IdempotencyStore`` port: the stack's idempotency table);
* logs are Powertools JSON with the Lambda context and a correlation id;
* EMF metrics are flushed per invocation: one ``Succeeded``, ``Failed``, ``Ignored`` or
  ``Duplicate`` per delivery, ``Retried`` when the invocation raises for a retry;
* an error a retry can help (``TransientError``, ``ConcurrencyConflict``, anything
  unexpected) is raised, so Lambda retries the event and finally sends it to the DLQ;
* a permanent error — of a delivery or of the payload itself — is logged, notified and
  answered ``{"status": "failed", …}`` without raising: retrying it never helps.
"""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

from modelpilot.config import Settings, xray_trace_header
from modelpilot.exceptions import ModelPilotError

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelpilot.service.dispatch import Delivery

__all__ = ["lambda_entry", "logger", "metrics", "xray_traceparent"]

#: the ``service`` of the functions' Powertools logs (and the name of their logging.Logger)
LOGGER_SERVICE = "modelpilot-functions"
#: a delivery's reply status → the EMF metric it counts as
_METRIC = {"failed": "Failed", "ignored": "Ignored"}


@functools.cache
def logger() -> Any:
    """Return the Powertools logger of the functions (JSON, one per container)."""
    from aws_lambda_powertools import Logger

    stream: Any = _Stdout()
    # Powertools names its logging.Logger after the service: "modelpilot" would take over the core's logger
    # (its level and handlers), so the functions log under a name of their own
    return Logger(service=LOGGER_SERVICE, stream=stream)


class _Stdout:
    """Writes to whatever ``sys.stdout`` is now (a redirected stdout must not break a cached logger)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@functools.cache
def metrics() -> Any:
    """Return the Powertools EMF metrics of the functions."""
    from aws_lambda_powertools import Metrics

    settings = Settings.from_env()
    return Metrics(namespace=settings.metrics_namespace, service=settings.service_name)


@functools.cache
def _tracing() -> None:
    """Give the process an SDK tracer provider (when none is configured) so spans have ids to propagate."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(TracerProvider())


def xray_traceparent(header: str | None = None) -> str | None:
    """Return the W3C ``traceparent`` of Lambda's X-Ray trace header (``_X_AMZN_TRACE_ID``), if any.

    ``Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`` becomes
    ``00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01``: the chain of
    functions shares one trace id with X-Ray.
    """
    header = header if header is not None else xray_trace_header()
    parts = dict(p.split("=", 1) for p in header.split(";") if "=" in p)
    root, parent = parts.get("Root", ""), parts.get("Parent", "")
    pieces = root.split("-")
    if len(pieces) != 3 or len(pieces[1] + pieces[2]) != 32 or len(parent) != 16:
        return None
    return f"00-{pieces[1]}{pieces[2]}-{parent}-{'01' if parts.get('Sampled') == '1' else '00'}"


def _count(name: str) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    metrics().add_metric(name=name, unit=MetricUnit.Count, value=1)


def _count_results(results: list[dict[str, Any]]) -> None:
    for result in results:
        name = "Duplicate" if result.get("duplicate") else _METRIC.get(str(result.get("status")), "Succeeded")
        _count(name)


#: the correlation id of any trigger: EventBridge event id, API request id, S3 request id, SNS message id
CORRELATION_PATH = (
    'id || requestContext.requestId || Records[0].responseElements."x-amz-request-id" || Records[0].Sns.MessageId'
)


def lambda_entry(
    name: str, *, correlation_id_path: str = CORRELATION_PATH
) -> Callable[[Callable[[Any, Any], Delivery | list[Delivery]]], Callable[[Any, Any], dict[str, Any]]]:
    """Decorate a handler that translates ``(event, context)`` into deliveries (see the module docstring).

    A handler returning one :class:`Delivery` is answered with that delivery's reply;
    a list (a batch of S3 records, of alarms) with ``{"status": …, "results": […]}``.
    """

    def wrap(translate: Callable[[Any, Any], Delivery | list[Delivery]]) -> Callable[[Any, Any], dict[str, Any]]:
        @functools.wraps(translate)
        def entry(event: Any, context: Any) -> dict[str, Any]:
            from modelpilot import telemetry
            from modelpilot.bootstrap import get_bus
            from modelpilot.service.dispatch import dispatch

            log, emf = logger(), metrics()

            @emf.log_metrics(raise_on_empty_metrics=False)  # type: ignore[untyped-decorator]
            @log.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)  # type: ignore[untyped-decorator]
            def run(event: Any, context: Any) -> dict[str, Any]:
                try:
                    reply = dispatch(
                        get_bus(), lambda: translate(event, context), function=name, source=f"{name} event"
                    )
                except ModelPilotError as exc:
                    if exc.retryable:
                        _count("Retried")
                        log.warning("%s: retryable error, letting Lambda retry: %s", name, exc.message)
                    raise
                _count_results(reply.get("results", [reply]))
                if reply.get("status") == "failed":
                    log.error("%s: rejected the event: %s", name, reply.get("message"), extra={"error": reply})
                else:
                    log.info("%s: %s", name, reply.get("status"), extra={"reply": reply})
                return reply

            _tracing()
            with telemetry.continue_trace(xray_traceparent()):
                reply_: dict[str, Any] = run(event, context)
            return reply_

        return entry

    return wrap
