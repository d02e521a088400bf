"""Drift at scale on Durable Functions: the ``drift_window`` orchestration and its two activities.

The orchestration fans out ``drift_partial`` (one batch of the window's files →
a partial profile) and fans in with ``drift_merge`` (the exact merge, the report,
gauges, monitor status and ``DriftDetected``). State lives in the app's storage
account (the Durable task hub). The logic is in
``modelpilot.entrypoints.azure.drift_durable``; these functions only bind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import azure.durable_functions as df

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.azure.drift_durable import (
    MERGE,
    PARTIAL,
    merge_command,
    orchestrate,
    partial_activity,
)

if TYPE_CHECKING:
    from collections.abc import Generator

bp = df.Blueprint()


def _retry(attempts: int) -> df.RetryOptions:
    return df.RetryOptions(first_retry_interval_in_milliseconds=5000, max_number_of_attempts=attempts)


@bp.function_name("drift_window")
@bp.orchestration_trigger(context_name="context")
def drift_window(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Fan out the window's batches, fan in with the merge (replayed by the runtime; deterministic)."""
    return (yield from orchestrate(context, _retry))


@bp.function_name(PARTIAL)
@bp.activity_trigger(input_name="payload")
def drift_partial(payload: dict[str, Any]) -> dict[str, Any]:
    """Read one batch into a partial profile; return its reference."""
    return partial_activity(get_bus().services, payload)


@bp.function_name(MERGE)
@bp.activity_trigger(input_name="payload")
def drift_merge(payload: dict[str, Any]) -> dict[str, Any]:
    """Merge the partials and report, through the bus."""
    return get_bus().handle(merge_command(payload)).to_dict()
