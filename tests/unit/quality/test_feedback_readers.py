"""Readers of the quality batch: captured predictions with their inference ids, and labels."""

from __future__ import annotations

import base64
import gzip
import json

import numpy as np

from modelpilot.drift.io.feedback import read_feedback, read_predictions
from modelpilot.drift.io.stats import ReadStats
from modelpilot.testing import InMemoryArtifactStore


def capture(
    data, *, output="0.9", inference_id=None, event_id="e-1", encoding="CSV", out_encoding="CSV", out_type="text/csv"
):
    meta = {"eventId": event_id, "inferenceTime": "2026-03-01T10:00:00Z"}
    if inference_id:
        meta["inferenceId"] = inference_id
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": out_type,
                    "mode": "OUTPUT",
                    "data": output,
                    "encoding": out_encoding,
                },
            },
            "eventMetadata": meta,
            "eventVersion": "0",
        }
    )


def rows_of(chunks):
    out = []
    for chunk in chunks:
        cols = chunk.columns
        for i in range(chunk.rows):
            out.append({k: (v[i] if not hasattr(v, "codes") else v.categories[v.codes[i]]) for k, v in cols.items()})
    return out


def test_sagemaker_capture_records_give_ids_outputs_and_features():
    store = InMemoryArtifactStore()
    lines = [
        capture("1.5,pro\n", output="0.91", inference_id="inf-1"),
        capture("2.5,basic\n3.5,pro\n", output="0.2\n0.7\n", event_id="e-2"),  # two rows, no inferenceId
        capture(
            "4.5,pro\n",
            output=base64.b64encode(b'{"predictions": [{"score": 0.4, "label": 0}]}').decode(),
            out_encoding="BASE64",
            out_type="application/json",
            event_id="e-3",
        ),
        capture("1.0,pro\n", output="0.1,0.9", event_id="e-4"),  # two output fields, the policy names one: corrupt
        '{"inference_id": "plain-1", "x": 1, "plan": "pro", "score": 0.3, "attribution": {"x": -0.2}}',
    ]
    store.write_bytes("mem://c/part.jsonl.gz", gzip.compress("\n".join(lines).encode()))
    stats = ReadStats()
    got = rows_of(
        read_predictions(store, "mem://c/", stats, features=["x", "plan"], id_column="inference_id", output=["score"])
    )
    ids = [r.get("inference_id") for r in got]
    assert ids == ["inf-1", "e-2#0", "e-2#1", "e-3", "plain-1"]
    assert [r.get("score") for r in got] == ["0.91", "0.2", "0.7", 0.4, 0.3]
    assert got[0]["x"] == "1.5" and got[0]["plan"] == "pro"
    assert got[4]["attribution.x"] == -0.2
    assert stats.corrupt_rows == 1 and "fields" in stats.examples[0]


def test_feedback_files_csv_jsonl_and_ground_truth_records():
    store = InMemoryArtifactStore()
    store.write_bytes("mem://f/a.csv", b"inference_id,label\ninf-1,1\ninf-2,0\n")
    store.write_bytes(
        "mem://f/b.jsonl",
        b'{"inference_id": "inf-3", "label": true}\n'
        b'{"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "e-9"}, "eventVersion": "0"}\n'
        b'{"groundTruthData": {"data": "{\\"x\\": 1}"}}\n'
        b"not json\n",
    )
    store.write_bytes("mem://f/readme.txt", b"ignored")
    stats = ReadStats()
    got = rows_of(read_feedback(store, "mem://f/", stats, id_column="inference_id", label_column="label"))
    pairs = [(str(r["inference_id"]), r["label"]) for r in got]
    assert ("inf-3", True) in pairs and ("e-9", "1") in pairs
    assert [p[0] for p in pairs[:2]] == ["inf-1", "inf-2"]
    assert np.asarray([p[1] for p in pairs[:2]], dtype=float).tolist() == [1.0, 0.0]
    assert stats.corrupt_rows == 2 and stats.files == 2 and stats.skipped_files == ["mem://f/readme.txt"]
