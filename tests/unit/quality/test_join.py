"""The hash-partitioned join against a dictionary join: duplicates, unknown ids, empty sides, repartitioning."""

from __future__ import annotations

import numpy as np
import pytest

from modelpilot.drift.frames import Categorical
from modelpilot.service.quality.join import HashJoin, id_bytes, id_hash


def reference_join(pred_ids, labels):
    first = {}
    for i, pid in enumerate(pred_ids):
        first.setdefault(pid, i)
    last = {}
    for lid, y in labels:
        last[lid] = y
    joined = {pid: last.get(pid) for pid in first}
    unknown = sum(1 for lid in last if lid not in first)
    return joined, unknown, len(pred_ids) - len(first), len(labels) - len(last)


def run(pred_ids, labels, *, partitions=8, max_rows=1 << 20, chunk=97):
    got = {}
    with HashJoin(partitions=partitions, max_rows=max_rows) as join:
        for s in range(0, len(pred_ids), chunk):
            ids, present = id_bytes(np.asarray(pred_ids[s : s + chunk], dtype=object))
            assert present.all()
            join.add_predictions({"id": ids, "row": np.arange(s, min(s + chunk, len(pred_ids)))})
        for s in range(0, len(labels), chunk):
            part = labels[s : s + chunk]
            ids, _ = id_bytes(np.asarray([lid for lid, _ in part], dtype=object))
            join.add_labels(ids, np.asarray([y for _, y in part], dtype=np.float64))
        for result in join.results():
            for pid, row, y in zip(result["id"], result["row"], result["y"], strict=True):
                key = pid.decode()
                assert key not in got, "an id comes out of one partition only, once"
                got[key] = (int(row), None if np.isnan(y) else float(y))
        stats = join.stats
    return got, stats


@pytest.mark.parametrize("max_rows", [1 << 20, 50])
def test_join_equals_dictionary_join(max_rows):
    rng = np.random.default_rng(0)
    pred_ids = [f"req-{i:06d}" for i in rng.permutation(3000)] + ["req-000001", "req-000002"]  # retried captures
    label_ids = [f"req-{i:06d}" for i in rng.choice(3000, 2000, replace=False)]
    labels = [(lid, float(rng.integers(0, 2))) for lid in label_ids]
    labels += [("req-000010", 7.0), ("ghost-1", 1.0), ("ghost-2", 0.0), ("ghost-1", 1.0)]  # correction, unknown ids
    expected, unknown, dup_pred, dup_labels = reference_join(pred_ids, labels)
    got, stats = run(pred_ids, labels, max_rows=max_rows)
    assert {k: v[1] for k, v in got.items()} == expected
    assert all(pred_ids[row] == key for key, (row, _) in got.items())  # the first capture of a retried id is kept
    assert stats.matched == sum(1 for v in expected.values() if v is not None)
    assert stats.unknown_labels == unknown == 2
    assert stats.duplicate_predictions == dup_pred == 2
    assert stats.duplicate_labels == dup_labels
    assert stats.predictions == len(pred_ids) and stats.labels == len(labels)
    if max_rows == 50:
        assert stats.repartitioned > 0 and stats.largest_partition <= 50 * 4


def test_empty_sides():
    got, stats = run([], [("a", 1.0)])
    assert got == {} and stats.unknown_labels == 1 and stats.matched == 0
    got, stats = run(["a", "b"], [])
    assert got == {"a": (0, None), "b": (1, None)} and stats.matched == 0
    got, stats = run([], [])
    assert got == {} and stats.predictions == 0


def test_ids_of_every_spelling_meet():
    """An id read as a number (Arrow turns "12" into 12.0), as text or dictionary-encoded is the same id."""
    as_float, _ = id_bytes(np.array([12.0, 7.0, np.nan]))
    as_text, _ = id_bytes(np.array(["12", " 7 ", None], dtype=object))
    as_cat, present = id_bytes(Categorical(np.array([0, 1, -1]), ["12", "7"]))
    assert as_float[:2].tolist() == as_text[:2].tolist() == as_cat[:2].tolist() == [b"12", b"7"]
    assert present.tolist() == [True, True, False]
    unicode, _ = id_bytes(np.array(["réf-1", "abc"], dtype=object))
    assert unicode[0] == "réf-1".encode()
    # the hash ignores the width numpy pads an id to
    narrow = np.array([b"abc"], dtype="S3")
    wide = np.array([b"abc"], dtype="S40")
    assert id_hash(narrow).tolist() == id_hash(wide).tolist()
    assert id_hash(narrow, seed=1).tolist() != id_hash(narrow).tolist()


def test_spill_files_are_removed():
    import os

    join = HashJoin(partitions=4)
    folder = join.folder
    join.add_predictions({"id": np.array([b"a", b"b"]), "v": np.array([1.0, 2.0])})
    list(join.results())
    join.close()
    assert not os.path.exists(folder)
