"""Label files landing in the bucket or container (any cloud) → the quality batch of their window.

A label file at ``.../feedback/<model>/<env>/YYYY/MM/DD/HH/<file>`` holds labels of predictions made in that
hour, so it runs the one window holding that hour; a label file elsewhere under
``.../feedback/<model>/<env>/`` runs the model's recent windows. Any other object asks for nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from modelpilot.domain.commands import RunQualityBatch

__all__ = ["feedback_command"]

_FEEDBACK = re.compile(r"(?:^|/)feedback/([^/]+)/([^/]+)/(?:(\d{4})/(\d{2})/(\d{2})/(\d{2})/)?(?:[^/]+/)*[^/]+$")


def feedback_command(key: str, trigger: str, *, actor: str) -> RunQualityBatch | None:
    """The batch a label file at object key (or blob name) ``key`` asks for, or None when it is no label file."""
    match = _FEEDBACK.search(key)
    if match is None or key.rsplit("/", 1)[-1].startswith((".", "_")):
        return None
    model, environment, year, month, day, hour = match.groups()
    window_of = None
    if year is not None:
        try:
            window_of = datetime(int(year), int(month), int(day), int(hour), tzinfo=UTC)
        except ValueError:
            window_of = None
    return RunQualityBatch(actor=actor, model=model, environment=environment, window_of=window_of, trigger=trigger)
