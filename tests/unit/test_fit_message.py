"""Cutting a notification to a channel's limit: whole characters, never over the limit, a note when cut."""

from __future__ import annotations

import json

import pytest

from modelpilot.adapters._limits import fit_message


def test_a_message_that_fits_is_unchanged():
    assert fit_message("é" * 50, 100) == "é" * 50


@pytest.mark.parametrize("limit", [80, 81, 82, 83, 200])
def test_a_cut_message_fits_keeps_whole_characters_and_says_so(limit):
    message = "é✓" * 100  # 2 + 3 bytes per pair
    cut = fit_message(message, limit)
    kept, note = cut.split("\n", 1)
    assert len(cut.encode()) <= limit
    assert message.startswith(kept) and len(kept.encode()) > limit - len(note.encode()) - 4
    assert note == "[message cut: 500 bytes, more than this channel carries]"


def test_the_size_is_measured_as_the_channel_counts_it():
    message = "é" * 100  # 200 UTF-8 bytes, 602 as a JSON string

    def as_json(text):
        return len(json.dumps(text))

    assert fit_message(message, 300) == message
    assert fit_message(message, 700, as_json) == message
    shorter = fit_message(message, 400, as_json)
    assert as_json(shorter) <= 400 and shorter.startswith("é" * 50) and not shorter.startswith("é" * 60)
