"""Readers of the quality batch: captured predictions with their inference ids, and late labels (feedback).

Both stream through the ``ArtifactStore`` port in chunks, with the capture readers' plumbing (format by file
name, ``.gz``, pyarrow for CSV and Parquet, corrupt lines counted in :class:`ReadStats`). What differs is the
JSON Lines records:

* **predictions** — a SageMaker data-capture record gives one row per input row: the features (as the drift
  readers map them), the endpoint output's CSV fields named by ``output`` (e.g. ``["score"]``) or its JSON
  (``{"predictions": [...]}``, objects or numbers), and the inference id: ``eventMetadata.inferenceId``, else
  ``eventMetadata.eventId``, with ``#<row>`` appended when one record holds several rows. A plain JSON object
  is one row; a nested object (``{"attribution": {"tenure": 0.3}}``) becomes columns ``attribution.tenure``;
* **feedback** — plain objects (``{"inference_id": ..., "label": ...}``), or SageMaker Model Monitor
  ground-truth records (``groundTruthData.data`` keyed by ``eventMetadata.eventId``).
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any

from modelpilot.drift.frames import DEFAULT_CHUNK_ROWS
from modelpilot.drift.io._capture import capture_rows
from modelpilot.drift.io.readers import _Columns, _read_file, detect_format, iter_lines, open_data
from modelpilot.exceptions import ArtifactMissing, DataError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from modelpilot.drift.frames import Chunk
    from modelpilot.drift.io.stats import ReadStats
    from modelpilot.ports import ArtifactStore

__all__ = ["ground_truth_row", "prediction_rows", "read_feedback", "read_predictions"]

Rows = tuple[list[dict[str, Any]], str | None]


def read_predictions(
    store: ArtifactStore,
    uri: str,
    stats: ReadStats,
    *,
    features: Sequence[str],
    id_column: str,
    output: Sequence[str],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[Chunk]:
    """Yield chunks of captured predictions under ``uri`` (a file or a prefix)."""

    def rows(record: dict[str, Any]) -> Rows:
        return prediction_rows(record, features, id_column, output)

    yield from _read_all(store, uri, stats, chunk_rows, rows, features)


def read_feedback(
    store: ArtifactStore,
    uri: str,
    stats: ReadStats,
    *,
    id_column: str,
    label_column: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> Iterator[Chunk]:
    """Yield chunks of labels under ``uri`` (a file or a prefix)."""

    def rows(record: dict[str, Any]) -> Rows:
        if "groundTruthData" in record:
            return ground_truth_row(record, id_column, label_column)
        return [_flatten(record)], None

    yield from _read_all(store, uri, stats, chunk_rows, rows, [])


def _read_all(
    store: ArtifactStore,
    uri: str,
    stats: ReadStats,
    chunk_rows: int,
    to_rows: Callable[[dict[str, Any]], Rows],
    features: Sequence[str],
) -> Iterator[Chunk]:
    objects = store.list(uri)
    if not objects:
        raise ArtifactMissing(f"no data under {uri}", uri=uri)
    for obj in objects:
        name = obj.uri.rsplit("/", 1)[-1]
        if name.startswith((".", "_")):
            continue
        fmt = detect_format(obj.uri)
        if fmt is None:
            stats.skipped_files.append(obj.uri)
            continue
        stats.files += 1
        try:
            if fmt == "jsonl":
                raw = open_data(store, obj.uri)
                yield from _read_records(raw, obj.uri, stats, chunk_rows, to_rows)
            else:
                yield from _read_file(store, obj.uri, fmt, features, stats, chunk_rows, None)
        except (DataError, ValueError, OSError, zlib.error, EOFError) as exc:
            stats.corrupt_file(obj.uri, str(exc) or type(exc).__name__)


def _read_records(
    raw: Iterator[bytes], uri: str, stats: ReadStats, chunk_rows: int, to_rows: Callable[[dict[str, Any]], Rows]
) -> Iterator[Chunk]:
    out = _Columns(chunk_rows)
    for number, line in enumerate(iter_lines(raw), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            out.corrupt += 1
            stats.corrupt(f"{uri}:{number}", f"not JSON ({exc.msg})")
            continue
        rows, problem = to_rows(record) if isinstance(record, dict) else ([], "not a JSON object")
        if problem:
            out.corrupt += 1
            stats.corrupt(f"{uri}:{number}", problem)
            continue
        for row in rows:
            out.add(row)
            stats.rows += 1
        if out.full():
            chunk = out.flush()
            if chunk is not None:
                yield chunk
    last = out.flush()
    if last is not None:
        yield last


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                flat[f"{key}.{sub}"] = inner
        else:
            flat[key] = value
    return flat


def prediction_rows(record: dict[str, Any], features: Sequence[str], id_column: str, output: Sequence[str]) -> Rows:
    """Rows of one JSON record: a SageMaker capture record (inputs, outputs, inference id) or a plain object."""
    if "captureData" not in record:
        return [_flatten(record)], None
    rows, problem = capture_rows(record, features)
    if problem:
        return [], problem
    meta = record.get("eventMetadata") or {}
    base_id = meta.get("inferenceId") or meta.get("eventId") if isinstance(meta, dict) else None
    outputs, problem = _output_rows(record, output)
    if problem:
        return [], problem
    if outputs and len(outputs) != len(rows):
        return [], f"endpoint output has {len(outputs)} rows for {len(rows)} input rows"
    for i, row in enumerate(rows):
        if base_id is not None:
            row[id_column] = str(base_id) if len(rows) == 1 else f"{base_id}#{i}"
        if outputs:
            row.update(outputs[i])
        if isinstance(meta, dict) and meta.get("inferenceTime"):
            row.setdefault("inference_time", meta["inferenceTime"])
    return rows, None


def _output_rows(record: dict[str, Any], names: Sequence[str]) -> tuple[list[dict[str, Any]], str | None]:
    try:
        payload = record["captureData"]["endpointOutput"]
    except (KeyError, TypeError):
        return [], None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
        return [], "captureData.endpointOutput.data is not a string"
    data = payload["data"]
    encoding = str(payload.get("encoding", "")).upper()
    content_type = str(payload.get("observedContentType", "")).lower()
    if encoding == "BASE64":
        import base64
        import binascii

        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return [], "endpointOutput marked BASE64 but its data does not decode"
        encoding = "JSON" if "json" in content_type else "CSV"
    if encoding == "JSON" or (not encoding and "json" in content_type):
        try:
            doc = json.loads(data)
        except ValueError:
            return [], "endpointOutput JSON payload does not parse"
        return _json_outputs(doc, names)
    out = []
    for line in data.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if not line.strip():
            continue
        if len(fields) != len(names):
            return [], f"endpoint output has {len(fields)} fields, the policy names {len(names)}"
        out.append(dict(zip(names, fields, strict=True)))
    return out, None


def _json_outputs(doc: Any, names: Sequence[str]) -> tuple[list[dict[str, Any]], str | None]:
    if isinstance(doc, dict):
        for key in ("predictions", "outputs", "scores", "probabilities"):
            if isinstance(doc.get(key), list):
                return _json_outputs(doc[key], names)
        return [_flatten(doc)], None
    if isinstance(doc, list) and doc and all(isinstance(x, dict) for x in doc):
        return [_flatten(x) for x in doc], None
    if isinstance(doc, list) and doc and all(isinstance(x, list) for x in doc):
        rows = []
        for item in doc:
            if len(item) != len(names):
                return [], f"endpoint output row has {len(item)} values, the policy names {len(names)}"
            rows.append(dict(zip(names, item, strict=True)))
        return rows, None
    if isinstance(doc, list):
        if len(names) == 1:
            return [{names[0]: x} for x in doc], None
        if len(doc) == len(names):
            return [dict(zip(names, doc, strict=True))], None
        return [], f"endpoint output has {len(doc)} values, the policy names {len(names)}"
    if len(names) >= 1:
        return [{names[0]: doc}], None
    return [], "endpoint output is not understood"


def ground_truth_row(record: dict[str, Any], id_column: str, label_column: str) -> Rows:
    """One SageMaker Model Monitor ground-truth record → ``{id: eventId, label: data}``."""
    try:
        data = record["groundTruthData"]["data"]
        event_id = record["eventMetadata"]["eventId"]
    except (KeyError, TypeError):
        return [], "ground-truth record without groundTruthData.data and eventMetadata.eventId"
    encoding = str(record["groundTruthData"].get("encoding", "CSV")).upper()
    if encoding == "JSON" and isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return [], "groundTruthData JSON does not parse"
    if isinstance(data, str):
        data = data.strip()
    return [{id_column: str(event_id), label_column: data}], None
