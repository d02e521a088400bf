"""Outcome status words: one closed set, and which of them mean state changed."""

from __future__ import annotations

from typing import get_args

import pytest

from modelpilot.service.messagebus import Outcome, OutcomeStatus

CHANGED = {
    "registered",
    "approved_in_source",
    "promoted",
    "approved",
    "rejected",
    "rolled_back",
    "recorded",
    "built",
    "profile_failed",
    "drift",
    "degraded",
    "partial",
    "checked",
    "canary_started",
    "advanced",
    "held",
    "analysis_failed",
    "aborted",
    "paused",
    "resumed",
}
NOT_CHANGED = {"unchanged", "noop", "blocked", "skipped", "dry_run", "ok", "failed", "ignored"}


def test_every_status_word_is_classified_once():
    assert set(get_args(OutcomeStatus)) == CHANGED | NOT_CHANGED
    assert not CHANGED & NOT_CHANGED


@pytest.mark.parametrize("status", sorted(CHANGED | NOT_CHANGED))
def test_changed_follows_the_status(status):
    outcome = Outcome(status, "m")
    assert outcome.changed is (status in CHANGED)
    assert outcome.to_dict()["status"] == status
