"""The outbox part of the RegistryStore contract: watermarks, per-model heads, records after a seq.

Runs against every registry (fake, SQLite, DynamoDB on moto, Table Storage on Azurite).
"""

from __future__ import annotations

import threading

from modelpilot.service.outbox import EPOCH
from tests.contract.test_registry_contract import register
from tests.support.builders import entry


def test_a_watermark_starts_unset_and_only_moves_forward(registry):
    assert registry.supports_outbox
    assert registry.outbox_watermark("churn") is None
    assert registry.advance_outbox_watermark("churn", 2) is True
    assert registry.outbox_watermark("churn") == 2
    assert registry.advance_outbox_watermark("churn", 1) is False  # never backwards
    assert registry.advance_outbox_watermark("churn", 2) is False  # nor in place
    assert registry.outbox_watermark("churn") == 2
    assert registry.advance_outbox_watermark("churn", 5) is True
    assert registry.outbox_watermark("churn") == 5
    assert registry.outbox_watermark("other") is None  # one per model


def test_watermarks_are_not_models_and_touch_no_chain(registry):
    register(registry, seed="a")
    registry.advance_outbox_watermark("churn", 1)
    registry.advance_outbox_watermark(EPOCH, 1)
    assert registry.list_models() == ["churn"]
    assert registry.audited_models() == ["churn"]
    assert sorted(registry.audit_heads()) == ["churn"]
    assert [r.seq for r in registry.audit_records("churn")] == [1]


def test_the_head_and_the_records_after_a_seq_of_one_model(registry):
    assert registry.audit_head("churn") is None
    register(registry, seed="a")
    register(registry, seed="b")
    registry.append_audit(entry("churn", "alarm"))
    register(registry, name="fraud", seed="c")
    head = registry.audit_head("churn")
    assert head is not None and head.seq == 3 and head == registry.audit_heads()["churn"]
    assert [r.seq for r in registry.audit_records_after("churn", 0)] == [1, 2, 3]
    assert [(r.seq, r.action) for r in registry.audit_records_after("churn", 1)] == [(2, "register"), (3, "alarm")]
    assert registry.audit_records_after("churn", 3) == []
    assert [r.model for r in registry.audit_records_after("fraud", 0)] == ["fraud"]


def test_racing_advances_leave_the_highest_seq(registry):
    seqs = list(range(1, 9))
    moved: list[bool] = []
    lock = threading.Lock()

    def advance(seq: int) -> None:
        result = registry.advance_outbox_watermark("churn", seq)
        with lock:
            moved.append(result)

    threads = [threading.Thread(target=advance, args=(s,)) for s in reversed(seqs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registry.outbox_watermark("churn") == 8
    assert len(moved) == 8 and moved.count(True) >= 1
