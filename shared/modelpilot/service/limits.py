"""Bounds every command respects, whichever entrypoint built it: numbers the stores can hold, text they can keep.

SQLite and DynamoDB hold 64-bit integers and JSON readers are exact to 2**53, so a
version is a whole number from 1 to 2**53; Azure Table Storage keeps 64 KiB in a
property, so free text (a reason, a comment) is at most 4,096 characters.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from modelpilot.exceptions import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from modelpilot.domain.commands import Command

__all__ = ["MAX_TEXT_CHARS", "MAX_VERSION", "check_command"]

MAX_VERSION = 2**53
MAX_TEXT_CHARS = 4096
_VERSIONS = ("version", "to_version", "from_version")
_TEXTS = ("reason", "comment")
_NAMES = ("model", "environment", "actor", "approver", "trigger")
#: names and ids (a model, an environment, an actor, an S3 key as trigger) are at most this long
MAX_NAME_CHARS = 2048


def check_command(command: Command) -> None:
    """Raise ``InvalidInput`` (or ``PayloadTooLarge``) when ``command`` holds a value no store can keep.

    Versions must be whole numbers (never ``True``) from 1 to :data:`MAX_VERSION`;
    reasons and comments at most :data:`MAX_TEXT_CHARS` characters; every text valid UTF-8.
    """
    if not dataclasses.is_dataclass(command):
        return
    for field in dataclasses.fields(command):
        value = getattr(command, field.name)
        if field.name in _VERSIONS and value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"{field.name} must be a whole number, not {type(value).__name__}", field=field.name)
            if not 1 <= value <= MAX_VERSION:
                raise InvalidInput(f"{field.name} must be between 1 and 2**53, not {value}", field=field.name)
        elif isinstance(value, str):
            _check_text(field.name, value)


def _check_text(name: str, value: str) -> None:
    limit = MAX_TEXT_CHARS if name in _TEXTS else MAX_NAME_CHARS if name in _NAMES else None
    if limit is not None and len(value) > limit:
        raise PayloadTooLarge(f"{name} is {len(value)} characters; at most {limit} are kept", field=name, limit=limit)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(f"{name} holds a lone surrogate (\\ud800-\\udfff), which is not UTF-8", field=name) from None
