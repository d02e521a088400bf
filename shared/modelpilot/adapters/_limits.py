"""Fitting outbound messages into a channel's size limit (SNS, Event Grid)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["fit_message", "utf8_size"]


def utf8_size(text: str) -> int:
    """Return the UTF-8 bytes of ``text``."""
    return len(text.encode())


def fit_message(message: str, limit: int, size: Callable[[str], int] = utf8_size) -> str:
    """Return ``message`` when ``size(message) <= limit``, else its longest start that fits with a note saying so.

    ``size`` measures text as the channel counts it (UTF-8 bytes by default; the
    length of its JSON string for a channel that sends JSON). Whole characters are
    kept. A notification too long for its channel is better cut than refused:
    refusing it would fail the command that already changed state.
    """
    if size(message) <= limit:
        return message
    note = f"\n[message cut: {utf8_size(message)} bytes, more than this channel carries]"
    room = limit - size(note)
    keep, over = 0, len(message)  # the longest start that fits has keep <= n < over characters
    while over - keep > 1:
        middle = (keep + over) // 2
        if size(message[:middle]) <= room:
            keep = middle
        else:
            over = middle
    return message[:keep] + note
