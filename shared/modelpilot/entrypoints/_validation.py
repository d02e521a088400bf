"""Validate a raw payload with a pydantic model; a mismatch becomes ``InvalidEvent`` naming the field.

:func:`json_body` turns the raw bytes of an operator request (maybe base64, maybe
huge, maybe nested a million deep) into a JSON value or a typed error: the only
outcomes are a value, ``InvalidInput`` (400) or ``PayloadTooLarge`` (413).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from modelpilot.exceptions import InvalidEvent, InvalidInput, PayloadTooLarge, describe_validation

__all__ = ["MAX_BODY_BYTES", "MAX_JSON_DEPTH", "check_object_name", "json_body", "validate", "validate_as"]

#: an operator request body larger than this is refused with 413 before it is parsed
MAX_BODY_BYTES = 64 * 1024
#: how deep a request body may nest (every body is one flat object)
MAX_JSON_DEPTH = 8
#: S3 keys and blob names are at most 1,024 characters
MAX_OBJECT_NAME = 1024

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


def json_body(raw: bytes | str | None, *, base64_encoded: bool = False, what: str = "request body") -> Any:
    """Return the JSON value of a request body (empty means ``{}``).

    Raises ``PayloadTooLarge`` over :data:`MAX_BODY_BYTES` and ``InvalidInput`` for
    bad base64, bytes that are not UTF-8, text that is not JSON, or nesting deeper
    than :data:`MAX_JSON_DEPTH`.
    """
    if raw is None:
        return {}
    if isinstance(raw, str):
        if len(raw) > 4 * MAX_BODY_BYTES:
            raise _too_large(what)
        try:
            raw = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(f"{what} is not UTF-8 text") from None
    if base64_encoded:
        if len(raw) > 4 * (MAX_BODY_BYTES // 3 + 1):
            raise _too_large(what)
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{what} is marked base64 but is not valid base64") from None
    if len(raw) > MAX_BODY_BYTES:
        raise _too_large(what)
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError:
        raise InvalidInput(f"{what} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise InvalidInput(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep") from None
    _check_depth(data, what)
    return data


def _too_large(what: str) -> PayloadTooLarge:
    return PayloadTooLarge(f"{what} is larger than {MAX_BODY_BYTES // 1024} KiB", limit=MAX_BODY_BYTES)


def _check_depth(data: Any, what: str) -> None:
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
            stack.extend((k, depth + 1) for k in value)
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInput(f"{what} holds a lone surrogate (\\ud800-\\udfff), which is not UTF-8") from None


def check_object_name(name: str, what: str, **details: object) -> str:
    """Return ``name`` (an S3 key or blob name from an event) if every part of it is a plain name.

    ``..`` or ``.`` parts, empty parts, a leading ``/``, backslashes, control characters or
    more than 1,024 characters raise ``InvalidEvent``: permanent, so the event is rejected
    once instead of being retried.
    """
    parts = name.split("/")
    bad = (
        not name
        or len(name) > MAX_OBJECT_NAME
        or "\\" in name
        or any(ord(c) < 32 or ord(c) == 127 for c in name)
        or any(part in {"", ".", ".."} for part in parts)
    )
    if bad:
        raise InvalidEvent(
            f"{what} {name[:200]!r} is not a plain object name (no '.' or '..' parts, empty parts, "
            "backslashes or control characters; at most 1,024 characters)",
            **details,
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(f"{what} is not UTF-8 text", **details) from None
    return name
