"""The Lambda side of every AWS handler: Powertools Logger and Metrics, tracing, the one error policy.

``lambda_entry`` wraps a handler ``(event, context) -> list[Delivery] | Delivery`` so that

* each delivery runs through :func:`modelpilot.service.dispatch.handle_once` (once per
  business key, on the ``IdempotencyStore`` port: the stack's idempotency table);
* logs are ECS JSON (``modelpilot.telemetry.logs``) through the Powertools logger, with the
  invocation (``faas.*``, ``cloud.provider``), the correlation id, the trace ids and the
  command's model, environment and version: the same fields as the core's and the CLI's;
* traces: the process's provider is installed first (``telemetry.setup_tracing("aws")``:
  OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), the X-Ray trace header of the
  invocation is the parent of its work (``opentelemetry-propagator-aws-xray``), and spans are
  flushed before the invocation returns;
* EMF metrics are flushed per invocation: one ``Succeeded``, ``Failed``, ``Ignored`` or
  ``Duplicate`` per delivery, ``Retried`` when the invocation raises for a retry;
* a delivery's idempotency claim lasts no longer than the invocation may still run
  (``context.get_remaining_time_in_millis()``, capped at the dispatch's 900 s), so an
  invocation that times out leaves a claim that has expired by the time Lambda retries;
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

__all__ = ["api_entry", "lambda_entry", "logger", "metrics", "remaining_ms", "xray_traceparent"]

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
    return Logger(service=LOGGER_SERVICE, stream=stream, logger_formatter=_ecs_formatter())


def _ecs_formatter() -> Any:
    """A Powertools formatter that writes the core's ECS lines (the invocation's fields come from
    ``telemetry.log_context``, set for every invocation, so both loggers agree)."""
    from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter

    from modelpilot.telemetry import EcsFormatter

    class EcsPowertoolsFormatter(BasePowertoolsFormatter):
        def __init__(self) -> None:
            super().__init__()
            self.ecs = EcsFormatter()
            self.keys: dict[str, Any] = {}

        def append_keys(self, **additional_keys: Any) -> None:
            self.keys.update(additional_keys)

        def get_current_keys(self) -> dict[str, Any]:
            return dict(self.keys)

        def remove_keys(self, keys: Any) -> None:
            for key in keys:
                self.keys.pop(key, None)

        def clear_state(self) -> None:
            self.keys.clear()

        def thread_safe_append_keys(self, **additional_keys: Any) -> None:
            self.append_keys(**additional_keys)

        def thread_safe_get_current_keys(self) -> dict[str, Any]:
            return self.get_current_keys()

        def thread_safe_remove_keys(self, keys: Any) -> None:
            self.remove_keys(keys)

        def thread_safe_clear_keys(self) -> None:
            self.clear_state()

        def format(self, record: Any) -> str:
            return self.ecs.format(record)

    return EcsPowertoolsFormatter()


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


def xray_traceparent(header: str | None = None) -> str | None:
    """Return the W3C ``traceparent`` of Lambda's X-Ray trace header (``_X_AMZN_TRACE_ID``), if any.

    ``Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`` becomes
    ``00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01`` (through the AWS X-Ray
    propagator): the chain of functions shares one trace id with X-Ray.
    """
    from modelpilot import telemetry

    return telemetry.traceparent_from_xray(header if header is not None else xray_trace_header())


#: the FaaS trigger type (OpenTelemetry ``faas.trigger``) of each function
TRIGGERS = {
    "model_upload": "datasource",
    "sagemaker_registry": "pubsub",
    "alarm": "pubsub",
    "slo_check": "timer",
    "drift_batch": "timer",
    "operator_api": "http",
}
_cold = [True]


def _invocation(name: str, context: Any, correlation_id: Any) -> dict[str, Any]:
    """The ECS fields of one invocation (every log line written during it carries them)."""
    cold, _cold[0] = _cold[0], False
    return {
        "cloud.provider": "aws",
        "faas.name": name,
        "faas.execution": getattr(context, "aws_request_id", None),
        "faas.id": getattr(context, "invoked_function_arn", None),
        "faas.coldstart": cold,
        "faas.trigger.type": TRIGGERS.get(name, "other"),
        "labels.correlation_id": correlation_id if isinstance(correlation_id, str) else None,
    }


def remaining_ms(context: Any) -> float | None:
    """Return how many milliseconds the invocation may still run (Lambda's
    ``context.get_remaining_time_in_millis()``), or None when the context cannot tell."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return None
    try:
        value = float(remaining())
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None


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
            from modelpilot.service.dispatch import claim_seconds, dispatch

            telemetry.setup_tracing("aws")
            log, emf = logger(), metrics()

            @emf.log_metrics(raise_on_empty_metrics=False)  # type: ignore[untyped-decorator]
            @log.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)  # type: ignore[untyped-decorator]
            def run(event: Any, context: Any) -> dict[str, Any]:
                with telemetry.log_context(**_invocation(name, context, log.get_current_keys().get("correlation_id"))):
                    try:
                        reply = dispatch(
                            get_bus(),
                            lambda: translate(event, context),
                            function=name,
                            source=f"{name} event",
                            lock_seconds=claim_seconds(remaining_ms(context)),
                        )
                    except ModelPilotError as exc:
                        if exc.retryable:
                            _count("Retried")
                            log.warning("%s: retryable error, letting Lambda retry: %s", name, exc.message)
                        raise
                    _count_results(reply.get("results", [reply]))
                    if reply.get("status") == "failed":
                        log.error(
                            "%s: rejected the event: %s",
                            name,
                            reply.get("message"),
                            extra={
                                "error": {"code": reply.get("error"), "message": reply.get("message")},
                                "modelpilot": {"reply": reply},
                            },
                        )
                    else:
                        log.info("%s: %s", name, reply.get("status"), extra={"modelpilot": {"reply": reply}})
                    return reply

            try:
                with telemetry.attached(telemetry.context_from_xray(xray_trace_header())):
                    reply_: dict[str, Any] = run(event, context)
            finally:
                telemetry.flush()
            return reply_

        return entry

    return wrap


def api_entry(name: str) -> Callable[[Callable[[Any, Any], dict[str, Any]]], Callable[[Any, Any], dict[str, Any]]]:
    """Decorate the operator API handler: tracing set up first, one ``SERVER`` span per request (continuing
    the request's ``traceparent`` header, else the X-Ray header), the invocation's log fields, a flush."""

    def wrap(handle: Callable[[Any, Any], dict[str, Any]]) -> Callable[[Any, Any], dict[str, Any]]:
        @functools.wraps(handle)
        def entry(event: Any, context: Any) -> dict[str, Any]:
            from modelpilot import telemetry

            telemetry.setup_tracing("aws")
            request = event.get("requestContext", {}) if isinstance(event, dict) else {}
            headers = {
                str(k).lower(): v for k, v in ((event.get("headers") or {}) if isinstance(event, dict) else {}).items()
            }
            http = request.get("http", {}) if isinstance(request, dict) else {}
            attributes = {
                "faas.name": name,
                "http.request.method": http.get("method"),
                "url.path": http.get("path"),
            }
            fields = _invocation(name, context, request.get("requestId") if isinstance(request, dict) else None)
            try:
                with (
                    telemetry.attached(telemetry.context_from_xray(xray_trace_header())),
                    telemetry.log_context(**fields),
                    telemetry.request_span(name, headers.get("traceparent"), attributes) as span,
                ):
                    reply = handle(event, context)
                    span.set_attribute("http.response.status_code", int(reply.get("statusCode", 200)))
                    return reply
            finally:
                telemetry.flush()

        return entry

    return wrap
