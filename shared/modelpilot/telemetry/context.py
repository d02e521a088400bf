"""What every log line of the work in progress carries: the invocation's ECS fields and the command's labels.

Context variables, so concurrent work (threads, tasks) never mixes its fields; set by
the runtimes (:func:`log_context`) and by every command span (:func:`log_labels`), read
by :class:`modelpilot.telemetry.logs.EcsFormatter`.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["current_fields", "current_labels", "label", "log_context", "log_labels"]

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("modelpilot_log_context", default={})  # noqa: B039
_labels: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("modelpilot_log_labels", default={})  # noqa: B039


def label(value: Any) -> str:
    """Return ``value`` as an ECS label (a keyword: a string)."""
    return value if isinstance(value, str) else str(value)


def current_fields() -> dict[str, Any]:
    """The ECS fields (dotted names) set for the work in progress."""
    return _context.get()


def current_labels() -> dict[str, str]:
    """The labels set for the work in progress."""
    return _labels.get()


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ECS fields (dotted names as keywords: ``**{"faas.name": "promote"}``) to every line in the block."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


@contextmanager
def log_labels(**labels: Any) -> Iterator[None]:
    """Add ``labels.<key>`` to every line in the block (values become strings, as ECS labels are keywords)."""
    merged = {**_labels.get(), **{k: label(v) for k, v in labels.items() if v is not None}}
    token = _labels.set(merged)
    try:
        yield
    finally:
        _labels.reset(token)
