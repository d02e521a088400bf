"""The drift report: a versioned JSON document, one per model, environment and window.

``schema`` is ``"modelpilot.drift.report"`` and ``schema_version`` 1;
:func:`report_schema` returns its JSON Schema. For every feature the report
names the effect-size method, its threshold and value, the test, the sample
sizes, the raw and corrected p-values and the verdict; features are sorted by
drift (drifted first, then by effect relative to threshold).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["REPORT_SCHEMA", "REPORT_VERSION", "DriftReport", "report_id", "report_schema"]

REPORT_SCHEMA = "modelpilot.drift.report"
REPORT_VERSION = 1


def report_id(model: str, environment: str, window_start: str, window_end: str, data_uri: str = "") -> str:
    """Return the deterministic id of a report: same model, environment and window → same id."""
    key = "\n".join([model, environment, window_start, window_end, data_uri]).encode()
    stamp = window_end.replace(":", "").replace("-", "").split("+")[0].split(".")[0]
    return f"{model}-{environment}-{stamp}-{hashlib.sha256(key).hexdigest()[:12]}"


@dataclass
class DriftReport:
    """A drift report; ``data`` is the JSON document."""

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
    def drifted_features(self) -> list[str]:
        """Names of the drifted features, most drifted first."""
        return list(self.data["drifted_features"])

    @property
    def features(self) -> list[dict[str, Any]]:
        """Per-feature results, most drifted first."""
        return list(self.data["features"])

    def feature(self, name: str) -> dict[str, Any]:
        """Return one feature's result."""
        for item in self.data["features"]:
            if item["name"] == name:
                return dict(item)
        raise KeyError(name)

    def to_json(self) -> bytes:
        """Return the canonical JSON bytes (stable: a re-run writes identical bytes)."""
        return report_json(self.data)

    @classmethod
    def from_json(cls, data: bytes | str) -> DriftReport:
        """Parse a report; raise ``DataError`` when it is not one of this schema version."""
        return cls(parse_report(data, schema=REPORT_SCHEMA, version=REPORT_VERSION, kind="drift"))


def report_json(data: dict[str, Any]) -> bytes:
    """Canonical JSON bytes of a report (sorted keys; non-finite numbers as ``"inf"``/``"-inf"``/null)."""
    return json.dumps(_finite(data), sort_keys=True, indent=1, allow_nan=False).encode()


def parse_report(data: bytes | str, *, schema: str, version: int, kind: str) -> dict[str, Any]:
    """Parse a report document of ``schema`` at ``version``; raise ``DataError`` naming the ``kind`` otherwise."""
    from modelpilot.exceptions import DataError

    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise DataError(f"not a {kind} report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise DataError(f"not a {kind} report (missing schema marker)")
    if doc.get("schema_version") != version:
        raise DataError(f"unsupported {kind} report version {doc.get('schema_version')!r}")
    return doc


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


_NUM = {"type": ["number", "string", "null"]}


def report_schema() -> dict[str, Any]:
    """Return the JSON Schema of the drift report (schema version 1)."""
    feature = {
        "type": "object",
        "required": [
            "name",
            "kind",
            "method",
            "threshold",
            "effect",
            "test",
            "pvalue",
            "pvalue_corrected",
            "n_reference",
            "n_current",
            "drifted",
            "critical",
            "metrics",
            "quality",
        ],
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": ["numeric", "categorical"]},
            "method": {"type": "string"},
            "threshold": {"type": "number"},
            "effect": _NUM,
            "test": {"enum": ["ks", "chi2"]},
            "pvalue": _NUM,
            "pvalue_corrected": _NUM,
            "n_reference": {"type": "integer"},
            "n_current": {"type": "integer"},
            "drifted": {"type": "boolean"},
            "critical": {"type": "boolean"},
            "ignored": {"type": "boolean"},
            "metrics": {"type": "object"},
            "quality": {"type": "object"},
            "histogram": {"type": "object"},
        },
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ModelPilot drift report",
        "type": "object",
        "required": [
            "schema",
            "schema_version",
            "report_id",
            "model",
            "environment",
            "window",
            "severity",
            "drift_severity",
            "drifted_features",
            "features",
            "quality",
            "settings",
            "reference",
            "current",
        ],
        "properties": {
            "schema": {"const": REPORT_SCHEMA},
            "schema_version": {"const": REPORT_VERSION},
            "report_id": {"type": "string"},
            "model": {"type": "string"},
            "environment": {"type": "string"},
            "version": {"type": ["integer", "null"]},
            "window": {
                "type": "object",
                "properties": {"start": {"type": ["string", "null"]}, "end": {"type": ["string", "null"]}},
            },
            "severity": {"enum": ["none", "warning", "critical"]},
            "drift_severity": {"enum": ["none", "warning", "critical"]},
            "drifted_features": {"type": "array", "items": {"type": "string"}},
            "features": {"type": "array", "items": feature},
            "quality": {"type": "object"},
            "settings": {"type": "object"},
            "reference": {"type": "object"},
            "current": {"type": "object"},
        },
    }
