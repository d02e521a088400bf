"""The IdempotencyStore contract."""

from __future__ import annotations

import pytest

from modelpilot.exceptions import ConcurrencyConflict


def test_claim_complete_replay(idempotency_store):
    assert idempotency_store.begin("k1") is None
    with pytest.raises(ConcurrencyConflict):
        idempotency_store.begin("k1")
    idempotency_store.complete("k1", {"status": "promoted", "version": 3})
    assert idempotency_store.begin("k1") == {"status": "promoted", "version": 3}


def test_release_lets_a_retry_claim_again(idempotency_store):
    assert idempotency_store.begin("k2") is None
    idempotency_store.release("k2")
    assert idempotency_store.begin("k2") is None


def test_expired_lock_can_be_reclaimed(idempotency_store):
    assert idempotency_store.begin("k3", lock_seconds=0) is None
    assert idempotency_store.begin("k3") is None
