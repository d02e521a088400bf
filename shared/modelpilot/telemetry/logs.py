"""Logs: Elastic Common Schema (ECS) JSON lines, the same fields from the CLI, Lambda and Azure.

:class:`EcsFormatter` is ``ecs-logging``'s formatter with what ModelPilot knows added:

* ``service.name`` (``POWERTOOLS_SERVICE_NAME``, default ``modelpilot``);
* ``trace.id`` and ``span.id`` of the active span, ``transaction.id`` of the delivery
  or request in progress (its local root span);
* the invocation, set by the runtime for its duration (:func:`log_context`):
  ``faas.name``, ``faas.execution``, ``faas.coldstart``, ``faas.trigger.type``,
  ``cloud.provider`` and ``labels.correlation_id`` (the trigger's event or request id);
* ``labels.model``, ``labels.environment``, ``labels.version`` (and ``labels.command``)
  of the command being handled (:func:`log_labels`, set by every command span),
  plus those a call passes in ``extra={"modelpilot": {...}}``; the other keys of that
  mapping stay under ``modelpilot.*``.

``docs/observability.md`` lists every field and shows a Filebeat / OpenSearch ingest.
"""

from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import ecs_logging

from modelpilot.config import Settings, log_level
from modelpilot.telemetry.context import current_fields, current_labels, label, log_context, log_labels
from modelpilot.telemetry.tracing import current_ids, transaction_id

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LABEL_KEYS", "EcsFormatter", "get_logger", "log_context", "log_labels", "logs_to_stderr"]

SCOPE = "modelpilot"
#: keys of ``extra={"modelpilot": {...}}`` (and of command spans) that become ``labels.*``
LABEL_KEYS = ("model", "environment", "version", "command", "correlation_id", "function", "key", "status")


def _merge(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node.setdefault(parts[-1], value)


class EcsFormatter(ecs_logging.StdlibFormatter):
    """ECS JSON with the service, trace, invocation and model fields (see the module docstring)."""

    def __init__(self, *, service_name: str | None = None, extra_fields: dict[str, Any] | None = None) -> None:
        super().__init__(exclude_fields=("log.original", "process.pid", "process.name", "process.thread.id"))
        self.service_name = service_name or Settings.from_env().service_name
        self.extra_fields = dict(extra_fields or {})

    def format_to_ecs(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the ECS document of ``record`` (a mapping; :meth:`format` dumps it as one JSON line)."""
        result: dict[str, Any] = super().format_to_ecs(record)
        custom = result.pop("modelpilot", None)
        labels = dict(current_labels())
        if isinstance(custom, dict):
            for key in LABEL_KEYS:
                value = custom.get(key)
                if value is not None and not isinstance(value, dict | list):
                    labels[key] = label(value)
                    custom.pop(key)
            if custom:
                result["modelpilot"] = custom
        if labels:
            existing = result.get("labels")
            result["labels"] = {**labels, **(existing if isinstance(existing, dict) else {})}
        for dotted, value in {**self.extra_fields, **current_fields()}.items():
            if dotted.startswith("labels."):
                result.setdefault("labels", {}).setdefault(dotted[len("labels.") :], label(value))
            else:
                _merge(result, dotted, value)
        _merge(result, "service.name", self.service_name)
        ids = current_ids()
        if ids is not None:
            _merge(result, "trace.id", ids[0])
            _merge(result, "span.id", ids[1])
        transaction = transaction_id()
        if transaction is not None:
            _merge(result, "transaction.id", transaction)
        return result


@contextmanager
def logs_to_stderr() -> Iterator[None]:
    """Send ModelPilot's logs only to stderr (ECS JSON) inside the block, then restore the handlers.

    The CLI runs its commands in this block so stdout carries nothing but the
    command's output, whatever handlers a host (e.g. Powertools on Lambda) installed.
    """
    root = logging.getLogger(SCOPE)
    saved = (list(root.handlers), root.level, root.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EcsFormatter())
    root.handlers = [handler]
    root.setLevel(log_level())
    root.propagate = False
    redirected = getattr(root, "_modelpilot_redirected", False)
    root._modelpilot_redirected = True  # type: ignore[attr-defined]  # get_logger adds no second handler
    try:
        yield
    finally:
        root.handlers, level, root.propagate = saved[0], saved[1], saved[2]
        root.setLevel(level)
        root._modelpilot_redirected = redirected  # type: ignore[attr-defined]


def get_logger(name: str = SCOPE) -> logging.Logger:
    """Return a logger under ``modelpilot`` that writes ECS JSON lines to stderr.

    The handler is installed once on the ``modelpilot`` logger; level from
    ``MODELPILOT_LOG_LEVEL`` (default WARNING so the CLI stays quiet).
    """
    root = logging.getLogger(SCOPE)
    if not getattr(root, "_modelpilot_configured", False) and not getattr(root, "_modelpilot_redirected", False):
        handler = logging.StreamHandler()
        handler.setFormatter(EcsFormatter())
        root.addHandler(handler)
        root.setLevel(log_level())
        root.propagate = False
        root._modelpilot_configured = True  # type: ignore[attr-defined]
    return logging.getLogger(name if name.startswith(SCOPE) else f"{SCOPE}.{name}")
