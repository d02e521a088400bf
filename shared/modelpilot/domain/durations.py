"""Durations written the way operators write them: ``90s``, ``5m``, ``1h``, ``28d``, ``2w``."""

from __future__ import annotations

import math
import re

__all__ = ["MAX_DURATION_SECONDS", "format_duration", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*([smhdw])\s*$", re.ASCII)
#: the longest duration anything accepts: 10 years (longer is a typo, and overflows date arithmetic)
MAX_DURATION_SECONDS = 10 * 365 * 86400
_FORMS = "use a number and a unit s, m, h, d or w (e.g. '30m', '1h', '28d')"


def parse_duration(text: object) -> int:
    """Return the number of seconds in ``text`` (``"1h"`` → 3600; a bare number is seconds).

    Total on any input: a value that is not a duration (a list, a date, ``inf``, a
    400-digit number, more than :data:`MAX_DURATION_SECONDS`) raises ``ValueError``
    with the accepted forms, never ``TypeError`` or ``OverflowError``.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError(f"a duration must be a number of seconds or a string; {_FORMS}")
    if isinstance(text, int | float):
        if isinstance(text, float) and not math.isfinite(text):
            raise ValueError(f"a duration must be finite; {_FORMS}")
        if text < 0:
            raise ValueError("a duration cannot be negative")
        seconds = text
    else:
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"invalid duration {text[:40]!r}: {_FORMS}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"a duration cannot be longer than {format_duration(MAX_DURATION_SECONDS)} (10 years)")
    return int(seconds)


def format_duration(seconds: int | float) -> str:
    """Return the shortest exact form of ``seconds`` (3600 → ``"1h"``)."""
    seconds = int(seconds)
    for unit in ("w", "d", "h", "m"):
        size = _UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
