"""Turn a pydantic ``ValidationError`` into the field path and message our typed errors carry."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = ["describe_validation"]


def describe_validation(exc: ValidationError, *, root: str = "<root>", limit: int = 10) -> tuple[str, str, list[str]]:
    """Return ``(field path of the first error, its message, "path: message" for up to ``limit`` errors)``."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or root
    listed = [f"{'.'.join(str(p) for p in e['loc']) or root}: {e['msg']}" for e in errors[:limit]]
    return where, str(first["msg"]), listed
