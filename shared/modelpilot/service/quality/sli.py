"""Quality SLIs: a ``MetricsSource`` over the quality batch's per-window numbers.

``source: quality`` in an SLO reads ``quality/<model>/<env>/windows/<window end>.json`` (one small file per
window, rewritten as late labels arrive) through the artifact store:

* ``metric: correct`` (a ratio): good = correct labelled predictions, total = labelled predictions, summed over
  the windows that ended in the SLO window;
* any other metric (a timeslice SLI): each window with enough labels is one slice; good = the slices whose
  metric meets ``op limit``.

When the query carries a version, only that version's numbers count.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import ArtifactMissing, DataError
from modelpilot.ports import EventCounts, MetricsSource

if TYPE_CHECKING:
    from modelpilot.ports import SliQuery
    from modelpilot.service.messagebus import Services

__all__ = ["QualityWindowsSource"]


def _holds(value: float, op: str, limit: float) -> bool:
    return value >= limit if op == ">=" else value <= limit


class QualityWindowsSource(MetricsSource):
    """Counts over the stored quality windows of a model and environment."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def _windows(self, model: str, environment: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        store = self.svc.artifacts
        prefix = store.join(self.svc.data_root, "quality", model, environment, "windows")
        out = []
        for obj in store.list(prefix):
            name = obj.uri.rsplit("/", 1)[-1]
            try:
                at = datetime.strptime(name, "%Y%m%dT%H%M%SZ.json").replace(tzinfo=UTC)
            except ValueError:
                continue
            if not start < at <= end:
                continue
            try:
                out.append(json.loads(store.read_bytes(obj.uri, max_bytes=4 * 1024 * 1024)))
            except (ArtifactMissing, ValueError) as exc:
                raise DataError(f"unreadable quality window {obj.uri}: {exc}") from None
        return out

    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        params = query.params or {}
        labels = params.get("labels") or {}
        version = labels.get("version")
        windows = self._windows(str(labels.get("model")), str(labels.get("environment")), start, end)
        good = total = 0.0
        for window in windows:
            for group in window.get("versions", []):
                if version is not None and group.get("version") != version:
                    continue
                if query.kind == "timeslice":
                    value = (group.get("metrics") or {}).get(params.get("metric"))
                    if not group.get("enough_labels") or not isinstance(value, int | float):
                        continue
                    total += 1
                    good += _holds(float(value), str(params.get("op")), float(params.get("limit", 0)))
                else:
                    total += float(group.get("labelled") or 0)
                    good += float(group.get("correct") or 0)
        return EventCounts(good, total, len(windows))
