"""The Lambda side of every AWS handler: Powertools Logger and Metrics, idempotency, error replies.

``lambda_entry`` wraps a handler so that

* logs are Powertools JSON with the Lambda context and a correlation id;
* EMF metrics (``Succeeded``, ``Failed``, ``Ignored``) are flushed per invocation;
* an error a retry can help (``TransientError``, ``ConcurrencyConflict``, an
  idempotency record still in progress, anything unexpected) is raised, so
  Lambda retries the event and finally sends it to the DLQ;
* a permanent error (``InvalidInput``, ``NotFound``, ``NotAuthorized``) is
  logged and answered with ``{"status": "failed", "error": …}`` without raising:
  retrying invalid input never helps.

``run_once`` runs one unit of work under the Powertools idempotency utility,
keyed on a business key, on the table named by ``MODELPILOT_IDEMPOTENCY_TABLE``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from modelpilot.config import ENV
from modelpilot.exceptions import ModelPilotError

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelpilot.service.messagebus import Outcome

__all__ = ["failure", "lambda_entry", "logger", "metrics", "reply", "run_once", "xray_traceparent"]

IDEMPOTENCY_SECONDS = 7 * 86400
#: the ``service`` of the functions' Powertools logs (and the name of their logging.Logger)
LOGGER_SERVICE = "modelpilot-functions"


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

    return Metrics(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ModelPilot"),
        service=os.environ.get("POWERTOOLS_SERVICE_NAME", "modelpilot"),
    )


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
    header = header if header is not None else os.environ.get("_X_AMZN_TRACE_ID", "")
    parts = dict(p.split("=", 1) for p in header.split(";") if "=" in p)
    root, parent = parts.get("Root", ""), parts.get("Parent", "")
    pieces = root.split("-")
    if len(pieces) != 3 or len(pieces[1] + pieces[2]) != 32 or len(parent) != 16:
        return None
    return f"00-{pieces[1]}{pieces[2]}-{parent}-{'01' if parts.get('Sampled') == '1' else '00'}"


def _count(name: str) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    metrics().add_metric(name=name, unit=MetricUnit.Count, value=1)


def reply(outcome: Outcome) -> dict[str, Any]:
    """Return a JSON-safe reply for an outcome (stored by the idempotency utility as is)."""
    result: dict[str, Any] = json.loads(json.dumps(outcome.to_dict(), default=str))
    return result


def failure(exc: ModelPilotError) -> dict[str, Any]:
    """Return the reply of a permanent error."""
    result: dict[str, Any] = json.loads(json.dumps({"status": "failed", **exc.to_dict()}, default=str))
    return result


@functools.cache
def _persistence() -> Any:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from modelpilot.bootstrap import get_bus

    make = get_bus().services.extras.get("client_factory")
    client = make("dynamodb") if make else None
    return DynamoDBPersistenceLayer(table_name=os.environ[ENV.IDEMPOTENCY_TABLE], boto3_client=client)


def run_once(kind: str, key: dict[str, Any], work: Callable[[], dict[str, Any]], context: Any) -> dict[str, Any]:
    """Run ``work`` once per business ``key`` (a duplicate returns the first run's result).

    A permanent error is returned as a failure reply and not stored, so nothing
    is remembered for input that changed nothing; a retryable error propagates.
    """
    try:
        if not os.environ.get(ENV.IDEMPOTENCY_TABLE):
            return work()
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_SECONDS, raise_on_no_idempotency_key=True)
        config.register_lambda_context(context)

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="key",
            persistence_store=_persistence(),
            config=config,
            key_prefix=f"modelpilot.{kind}",
        )
        def once(key: dict[str, Any]) -> dict[str, Any]:
            return work()

        result: dict[str, Any] = once(key=key)
        return result
    except ModelPilotError as exc:
        if exc.retryable:
            raise
        logger().warning("%s refused: %s", kind, exc.message, extra={"error": exc.to_dict(), "key": key})
        _count("Failed")
        return failure(exc)


#: the correlation id of any trigger: EventBridge event id, API request id, S3 request id, SNS message id
CORRELATION_PATH = (
    'id || requestContext.requestId || Records[0].responseElements."x-amz-request-id" || Records[0].Sns.MessageId'
)


def lambda_entry(name: str, *, correlation_id_path: str = CORRELATION_PATH) -> Callable[[Any], Any]:
    """Decorate a Lambda handler ``(event, context) -> dict`` (see the module docstring)."""

    def wrap(handler: Callable[[Any, Any], dict[str, Any]]) -> Callable[[Any, Any], dict[str, Any]]:
        @functools.wraps(handler)
        def entry(event: Any, context: Any) -> dict[str, Any]:
            log, emf = logger(), metrics()

            @emf.log_metrics(raise_on_empty_metrics=False)  # type: ignore[untyped-decorator]
            @log.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)  # type: ignore[untyped-decorator]
            def run(event: Any, context: Any) -> dict[str, Any]:
                try:
                    result = handler(event, context)
                except ModelPilotError as exc:
                    if exc.retryable:
                        _count("Retried")
                        log.warning("%s: retryable error, letting Lambda retry: %s", name, exc.message)
                        raise
                    log.error("%s: rejected the event: %s", name, exc.message, extra={"error": exc.to_dict()})
                    _count("Failed")
                    return failure(exc)
                _count("Ignored" if result.get("status") == "ignored" else "Succeeded")
                log.info("%s: %s", name, result.get("status"), extra={"reply": result})
                return result

            from modelpilot import telemetry

            _tracing()
            with telemetry.continue_trace(xray_traceparent()):
                reply_: dict[str, Any] = run(event, context)
            return reply_

        return entry

    return wrap
