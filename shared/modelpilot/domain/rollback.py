"""Rollback target selection from an alias's history.

The target is the most recent *earlier* version that was live in the environment
and is still eligible: not the current version, not rejected, and not a version
that was itself rolled back from (or reported breached) in that environment. It is
taken from the history, not computed as "version - 1": after v5 → v6 → v4 (a
rollback) → v7, rolling back from v7 goes to v4, never to v6.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelpilot.domain.model import AliasChange

__all__ = ["breached_versions", "select_rollback_target"]


def breached_versions(history: Iterable[AliasChange]) -> set[int]:
    """Return the versions an alias was rolled back *from* (they breached while live)."""
    return {c.from_version for c in history if c.action == "rollback" and c.from_version is not None}


def select_rollback_target(
    history: list[AliasChange],
    current: int,
    *,
    excluded: Iterable[int] = (),
) -> int | None:
    """Return the version to roll back to, or None when no eligible version exists.

    Parameters
    ----------
    history:
        The alias history, oldest first.
    current:
        The version the alias points at now.
    excluded:
        Further versions that must not be targets (rejected, or reported breached by a monitor).
    """
    banned = breached_versions(history) | set(excluded) | {current}
    for change in reversed(history):
        if change.to_version not in banned:
            return change.to_version
    return None
