"""Rollback targets come from the alias history, never simply version - 1."""

from __future__ import annotations

from modelpilot.domain.rollback import breached_versions, select_rollback_target
from tests.support.builders import change


def test_previous_version_from_history():
    history = [change("m", "prod", 1, None, 1), change("m", "prod", 2, 1, 3)]
    assert select_rollback_target(history, 3) == 1  # not 2: v2 never ran in prod


def test_skips_versions_that_were_rolled_back_from():
    history = [
        change("m", "prod", 1, None, 5),
        change("m", "prod", 2, 5, 6),
        change("m", "prod", 3, 6, 5, action="rollback"),
        change("m", "prod", 4, 5, 7),
    ]
    assert breached_versions(history) == {6}
    assert select_rollback_target(history, 7) == 5


def test_excluded_versions_and_no_target():
    history = [change("m", "prod", 1, None, 1), change("m", "prod", 2, 1, 2)]
    assert select_rollback_target(history, 2, excluded={1}) is None
    assert select_rollback_target([change("m", "prod", 1, None, 1)], 1) is None
