"""The quality report: a versioned JSON document, one per model, environment, window and set of inputs.

``schema`` is ``"modelpilot.quality.report"`` and ``schema_version`` 1. The id comes from the model, the
environment, the window and a fingerprint of the input files (names, sizes, etags), so running a window again
with the same captures and labels finds the stored report, and a label file landing gives a new report of the
same window.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from modelpilot.drift.report import parse_report, report_json

__all__ = ["REPORT_SCHEMA", "REPORT_VERSION", "QualityReport", "quality_report_id"]

REPORT_SCHEMA = "modelpilot.quality.report"
REPORT_VERSION = 1


def quality_report_id(model: str, environment: str, window_end: str, fingerprint: str) -> str:
    """Return the report id: ``<model>-<env>-<window end>-q<12 hex of the inputs' fingerprint>``."""
    key = "\n".join([model, environment, window_end, fingerprint]).encode()
    stamp = window_end.replace(":", "").replace("-", "").split("+")[0].split(".")[0]
    return f"{model}-{environment}-{stamp}-q{hashlib.sha256(key).hexdigest()[:12]}"


@dataclass
class QualityReport:
    """A quality report; ``data`` is the JSON document."""

    data: dict[str, Any]

    @property
    def report_id(self) -> str:
        """The report's id."""
        return str(self.data["report_id"])

    @property
    def severity(self) -> str:
        """none / warning / critical."""
        return str(self.data["severity"])

    @property
    def breaches(self) -> list[dict[str, Any]]:
        """What broke the policy, most severe first."""
        return list(self.data["breaches"])

    def version(self, number: int | None) -> dict[str, Any] | None:
        """The numbers of one model version in this window."""
        for group in self.data["versions"]:
            if group["version"] == number:
                return dict(group)
        return None

    def to_json(self) -> bytes:
        """Return canonical JSON bytes (non-finite numbers as strings, as drift reports write them)."""
        return report_json(self.data)

    @classmethod
    def from_json(cls, data: bytes | str) -> QualityReport:
        """Parse a report; raise ``DataError`` when it is not one of this schema version."""
        return cls(parse_report(data, schema=REPORT_SCHEMA, version=REPORT_VERSION, kind="quality"))
