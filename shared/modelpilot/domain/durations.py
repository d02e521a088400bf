"""Durations written the way operators write them: ``90s``, ``5m``, ``1h``, ``28d``, ``2w``."""

from __future__ import annotations

import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str | int | float) -> int:
    """Return the number of seconds in ``text`` (``"1h"`` → 3600; a bare number is seconds).

    Raises ``ValueError`` with the accepted forms when ``text`` is not a duration.
    """
    if isinstance(text, bool):
        raise ValueError("a duration must be a number of seconds or a string like '30m', '1h', '28d'")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return int(text)
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit s, m, h, d or w (e.g. '30m', '1h', '28d')"
        )
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_duration(seconds: int | float) -> str:
    """Return the shortest exact form of ``seconds`` (3600 → ``"1h"``)."""
    seconds = int(seconds)
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
