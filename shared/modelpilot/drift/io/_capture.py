"""SageMaker Model Monitor data-capture records → feature rows.

A record (one JSON line) looks like::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "69,0,153.7\\n", "encoding": "CSV"},
                     "endpointOutput": {...}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2022-02-14T17:25:49Z"}, "eventVersion": "0"}

``encoding`` is ``CSV``, ``JSON`` or ``BASE64``; with ``BASE64`` the payload's
format comes from ``observedContentType``. CSV payloads may hold several rows
(one per line); their fields map by position to the model's features. JSON
payloads may be an object (name → value), a list of values, a list of either,
or an ``instances`` / ``inputs`` / ``data`` wrapper around those.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["capture_rows"]


def capture_rows(record: dict[str, Any], features: Sequence[str]) -> tuple[list[dict[str, Any]], str | None]:
    """Return ``(rows, None)`` or ``([], problem)`` for one capture record."""
    try:
        payload = record["captureData"]["endpointInput"]
        data = payload["data"]
        encoding = str(payload.get("encoding", "")).upper()
        content_type = str(payload.get("observedContentType", "")).lower()
    except (KeyError, TypeError):
        return [], "capture record without captureData.endpointInput.data"
    if not isinstance(data, str):
        return [], "captureData.endpointInput.data is not a string"
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return [], "endpointInput marked BASE64 but its data does not decode"
        encoding = "JSON" if "json" in content_type else "CSV"
    if encoding == "CSV" or (not encoding and "csv" in content_type):
        return _csv_rows(data, features)
    if encoding == "JSON" or "json" in content_type:
        try:
            return _json_rows(json.loads(data), features)
        except ValueError:
            return [], "endpointInput JSON payload does not parse"
    return [], f"unsupported capture encoding {encoding or content_type!r}"


def _csv_rows(text: str, features: Sequence[str]) -> tuple[list[dict[str, Any]], str | None]:
    rows = [r for r in csv.reader(io.StringIO(text)) if r]
    if not rows:
        return [], "empty CSV payload"
    for row in rows:
        if len(row) != len(features):
            return [], f"CSV payload has {len(row)} fields, the model has {len(features)} features"
    return [dict(zip(features, row, strict=True)) for row in rows], None


def _json_rows(doc: Any, features: Sequence[str]) -> tuple[list[dict[str, Any]], str | None]:
    if isinstance(doc, dict):
        for key in ("instances", "inputs", "data"):
            if key in doc and isinstance(doc[key], list):
                return _json_rows(doc[key], features)
        if "features" in doc and isinstance(doc["features"], list):
            return _json_rows(doc["features"], features)
        return [doc], None
    if isinstance(doc, list) and doc and all(isinstance(x, dict | list) for x in doc):
        rows: list[dict[str, Any]] = []
        for item in doc:
            got, problem = _json_rows(item, features)
            if problem:
                return [], problem
            rows.extend(got)
        return rows, None
    if isinstance(doc, list):
        if len(doc) != len(features):
            return [], f"JSON payload has {len(doc)} values, the model has {len(features)} features"
        return [dict(zip(features, doc, strict=True))], None
    return [], "JSON payload is neither an object nor a list"
