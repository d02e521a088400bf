"""Validate a raw payload with a pydantic model; a mismatch becomes ``InvalidEvent`` naming the field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from modelpilot.exceptions import InvalidEvent, describe_validation

__all__ = ["validate", "validate_as"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _invalid(exc: ValidationError, what: str) -> InvalidEvent:
    where, message, errors = describe_validation(exc)
    return InvalidEvent(f"{what}: field {where}: {message}", field=where, errors=errors)


def validate(model: type[M], data: Any, what: str) -> M:
    """Return ``data`` parsed as ``model``; raise ``InvalidEvent`` saying which field of ``what`` is wrong."""
    if not isinstance(data, dict):
        raise InvalidEvent(f"{what}: expected a JSON object, got {type(data).__name__}", field="<root>")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, what) from None
    except (AttributeError, TypeError, KeyError) as exc:  # a model's own validator choked on a wrong shape
        raise InvalidEvent(f"{what}: unexpected shape ({type(exc).__name__}: {exc})", field="<root>") from None


def validate_as(adapter: TypeAdapter[T], data: Any, what: str) -> T:
    """Like :func:`validate` for a type adapter (a union of payload models)."""
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise _invalid(exc, what) from None
