"""Durable Functions side of the drift fan-out: the orchestration (fan-out/fan-in) and its two activities.

* :func:`orchestrate` is the orchestrator's body, a generator the Durable runtime
  replays from the start on every new history event: it only yields tasks and
  reads its input, so every replay schedules the same activities in the same
  order. It fans out one ``drift_partial`` activity per batch, at most
  ``max_concurrency`` at a time, then runs ``drift_merge`` once.
* :func:`partial_activity` reads one batch into a partial profile (inline when
  small, else written once under its batch key to the artifact store).
* :func:`merge_command` turns the merge activity's input into the
  ``MergeDriftWindow`` command (run through the bus, so ``DriftDetected`` is
  published like a single pass's).
* :func:`orchestration_input` is what a starter passes to the orchestration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from modelpilot.domain.commands import MergeDriftWindow
from modelpilot.entrypoints._validation import validate
from modelpilot.service.drift.fanout import Batch, WindowPlan
from modelpilot.service.drift.window import orchestration_input, run_partial, store_partial

if TYPE_CHECKING:
    from collections.abc import Generator

    from modelpilot.service.messagebus import Services

__all__ = [
    "ACTOR",
    "INLINE_LIMIT",
    "MERGE",
    "PARTIAL",
    "merge_command",
    "orchestrate",
    "orchestration_input",
    "partial_activity",
]

ACTOR = "system:drift-fanout"
PARTIAL = "drift_partial"
MERGE = "drift_merge"
#: partials above this go to the artifact store, keeping the orchestration history small
INLINE_LIMIT = 48 * 1024


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: dict[str, Any]
    batches: list[dict[str, Any]] = Field(min_length=1)
    max_concurrency: int = Field(default=50, ge=1)
    retry_attempts: int = Field(default=3, ge=1)


class _Partial(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: dict[str, Any]
    batch: dict[str, Any]


class _Merge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: dict[str, Any]
    batches: list[dict[str, Any]]
    partials: list[dict[str, Any]]


def orchestrate(context: Any, retry_options: Any) -> Generator[Any, Any, Any]:
    """Fan out ``drift_partial`` over the batches in waves of ``max_concurrency``, then fan in with ``drift_merge``.

    ``retry_options`` is the SDK's ``RetryOptions`` (built by the blueprint, so this
    module needs no Durable SDK); a batch whose activity still fails fails the orchestration.
    """
    doc = validate(_Input, context.get_input(), "drift orchestration input")
    refs: list[Any] = []
    for start in range(0, len(doc.batches), doc.max_concurrency):
        wave = doc.batches[start : start + doc.max_concurrency]
        tasks = [
            context.call_activity_with_retry(PARTIAL, retry_options(doc.retry_attempts), {"plan": doc.plan, "batch": b})
            for b in wave
        ]
        refs.extend((yield context.task_all(tasks)))
    merge = {"plan": doc.plan, "batches": doc.batches, "partials": refs}
    return (yield context.call_activity_with_retry(MERGE, retry_options(doc.retry_attempts), merge))


def partial_activity(svc: Services, payload: Any) -> dict[str, Any]:
    """Read one batch; return the reference to its partial."""
    item = validate(_Partial, payload, "drift partial activity input")
    plan, batch = WindowPlan.from_dict(item.plan), Batch.from_dict(item.batch)
    return store_partial(svc, plan, batch, run_partial(svc, plan, batch), inline_limit=INLINE_LIMIT)


def merge_command(payload: Any) -> MergeDriftWindow:
    """Return the merge activity's command."""
    item = validate(_Merge, payload, "drift merge activity input")
    return MergeDriftWindow(
        actor=ACTOR,
        plan=item.plan,
        batches=tuple(item.batches),
        partials=tuple(item.partials),
        trigger="durable_functions",
    )
