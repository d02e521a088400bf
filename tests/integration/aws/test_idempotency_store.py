"""The IdempotencyStore contract on DynamoDB (moto's server), until the shared contract fixture lists it."""

from __future__ import annotations

import threading

import pytest

from tests.contract import test_idempotency_contract as contract
from tests.support.aws import make_idempotency_store


@pytest.fixture
def idempotency_store(request):
    return make_idempotency_store(request)


test_claim_complete_replay = contract.test_claim_complete_replay
test_release_lets_a_retry_claim_again = contract.test_release_lets_a_retry_claim_again
test_expired_lock_can_be_reclaimed = contract.test_expired_lock_can_be_reclaimed


def test_one_claim_wins_among_racing_runs(idempotency_store):
    won, lost = [], []
    start = threading.Barrier(8)

    def run(i):
        start.wait()
        try:
            won.append(idempotency_store.begin("race"))
        except Exception as exc:
            lost.append(type(exc).__name__)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert won == [None] and lost == ["ConcurrencyConflict"] * 7
