"""A process pool that reads a drift window's batches: ``modelpilot drift run --workers N``.

Each worker process builds its own services from the command's settings once
(adapters are never shared across processes), reads the batches it is given
into partial profiles and sends them back serialised; the parent merges them
through the same path as a single pass. Workers are started with ``spawn``:
no lock or client of the parent is inherited.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from modelpilot.drift._lanes import lane_count
from modelpilot.service.drift.fanout import Batch, PartialProfile, WindowPlan

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from modelpilot.config import Settings
    from modelpilot.drift.profile import Profile
    from modelpilot.service.messagebus import Services

__all__ = ["ProcessPoolRunner"]

_worker: dict[str, Any] = {}


def _start(settings: Settings, lanes: int) -> None:
    from modelpilot.bootstrap import build_services
    from modelpilot.drift._lanes import set_lane_count

    set_lane_count(lanes)  # the sibling processes share the cores: no more threads than this one's share
    _worker["services"] = build_services(settings)
    _worker["references"] = {}


def _read_batch(plan_doc: dict[str, Any], batch_doc: dict[str, Any]) -> bytes:
    from modelpilot.drift.profile import Profile
    from modelpilot.service.drift.window import run_partial

    svc: Services = _worker["services"]
    plan, batch = WindowPlan.from_dict(plan_doc), Batch.from_dict(batch_doc)
    references: dict[str, Profile] = _worker["references"]
    if plan.reference_uri not in references:
        raw = svc.artifacts.read_bytes(plan.reference_uri, max_bytes=256 * 1024 * 1024)
        references[plan.reference_uri] = Profile.from_json(raw)
    return run_partial(svc, plan, batch, reference=references[plan.reference_uri]).to_json()


class ProcessPoolRunner:
    """Reads batches over ``workers`` processes; yields their partials as they finish."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers

    def __call__(self, plan: WindowPlan, batches: Sequence[Batch]) -> Iterator[PartialProfile]:
        """Return the partial of every batch, in the order they finish."""
        context = multiprocessing.get_context("spawn")
        doc = plan.to_dict()
        with ProcessPoolExecutor(
            max_workers=max(1, min(self.workers, len(batches))),
            mp_context=context,
            initializer=_start,
            initargs=(self.settings, max(1, lane_count() // max(1, min(self.workers, len(batches))))),
        ) as pool:
            futures = [pool.submit(_read_batch, doc, b.to_dict()) for b in batches]
            for future in as_completed(futures):
                yield PartialProfile.from_json(future.result())
