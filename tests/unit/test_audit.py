"""The hash chain catches altered, removed, inserted and reordered records."""

from __future__ import annotations

from dataclasses import replace

from modelpilot.domain.audit import GENESIS, seal, verify_chain
from tests.support.builders import entry


def chain(n=5):
    records, prev = [], GENESIS
    for i in range(1, n + 1):
        record = seal(entry(action=f"a{i}", reason=f"r{i}"), seq=i, prev_hash=prev)
        records.append(record)
        prev = record.hash
    return records


def test_intact_chain_verifies():
    verdict = verify_chain("churn", chain())
    assert verdict.ok and verdict.records == 5 and verdict.first_bad_seq is None


def test_altered_record_is_named():
    records = chain()
    records[2] = replace(records[2], reason="rewritten")
    verdict = verify_chain("churn", records)
    assert not verdict.ok and verdict.first_bad_seq == 3 and "altered" in verdict.problem


def test_altered_record_with_recomputed_hash_breaks_the_next_link():
    records = chain()
    forged = seal(entry(action="a3", reason="forged"), seq=3, prev_hash=records[1].hash)
    records[2] = forged
    verdict = verify_chain("churn", records)
    assert not verdict.ok and verdict.first_bad_seq == 4


def test_removed_record_is_named():
    records = chain()
    del records[1]
    verdict = verify_chain("churn", records)
    assert not verdict.ok and verdict.first_bad_seq == 3 and "gap" in verdict.problem


def test_removed_last_record_cannot_be_detected_without_an_anchor_but_reorder_can():
    records = chain()
    records[1], records[2] = records[2], records[1]
    verdict = verify_chain("churn", records)
    assert not verdict.ok and verdict.first_bad_seq == 3


def test_round_trip_through_dict():
    from modelpilot.domain.audit import AuditRecord

    record = chain(1)[0]
    assert AuditRecord.from_dict(record.to_dict()) == record
