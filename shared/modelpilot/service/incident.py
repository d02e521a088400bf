"""Incidents: the timeline of what happened to a model in an environment, from the audit and the monitors.

:func:`release_traceparent` is the link between a release and what later judges it: an
alarm (which carries no trace context of its own) continues the trace recorded with the
audit record of the alias move that put the live version live.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelpilot.ports import RegistryStore

__all__ = ["release_traceparent"]

#: audit actions that move an alias
MOVES = ("promote", "rollback")


def release_traceparent(registry: RegistryStore, model: str, environment: str) -> str | None:
    """Return the W3C ``traceparent`` recorded when ``environment``'s live version went live, if any."""
    alias = registry.get_alias(model, environment)
    if alias is None:
        return None
    for record in reversed(registry.audit_records(model)):
        if record.environment == environment and record.action in MOVES and record.to_version == alias.version:
            traceparent = record.evidence.get("traceparent")
            return traceparent if isinstance(traceparent, str) else None
    return None
