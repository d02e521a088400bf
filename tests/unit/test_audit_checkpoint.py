"""Signed checkpoints: what the signature covers, malformed documents, and which checkpoint verify trusts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from modelpilot.domain.audit import AuditHead
from modelpilot.domain.checkpoint import CHECKPOINT_SECRET, Checkpoint, sign_checkpoint
from modelpilot.exceptions import InvalidInput
from modelpilot.service.audit import latest_checkpoint, write_checkpoint
from modelpilot.testing import InMemoryArtifactStore, InMemoryRegistry, InMemorySecrets
from tests.support.builders import T0, entry

KEY = b"k" * 32


def test_the_signature_covers_every_head_and_the_time():
    cp = sign_checkpoint({"churn": AuditHead(3, "a" * 64)}, T0, KEY)
    assert cp.signed_by(KEY)
    assert not cp.signed_by(b"other key" * 4)
    for forged in (
        Checkpoint(T0, {"churn": AuditHead(2, "a" * 64)}, cp.key_id, cp.signature),
        Checkpoint(T0, {"churn": AuditHead(3, "b" * 64)}, cp.key_id, cp.signature),
        Checkpoint(T0, {}, cp.key_id, cp.signature),
        Checkpoint(T0 + timedelta(seconds=1), cp.heads, cp.key_id, cp.signature),
    ):
        assert not forged.signed_by(KEY)
    assert Checkpoint.from_dict(json.loads(json.dumps(cp.to_dict()))).signed_by(KEY)


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"format": "other"},
        {"format": "modelpilot-audit-checkpoint/1"},
        {"format": "modelpilot-audit-checkpoint/1", "heads": {"m": {}}},
    ],
)
def test_malformed_documents_raise_value_error(doc):
    with pytest.raises(ValueError, match="checkpoint"):
        Checkpoint.from_dict(doc)


def _setup():
    registry = InMemoryRegistry()
    registry.append_audit(entry("ghost", "alarm"))
    return registry, InMemoryArtifactStore(), InMemorySecrets({CHECKPOINT_SECRET: "s" * 64})


def test_an_old_valid_checkpoint_copied_under_a_newer_name_does_not_stand_in_for_the_newest():
    registry, store, secrets = _setup()
    old_uri, _ = write_checkpoint(registry, store, "mem://a", secrets, T0)
    registry.append_audit(entry("ghost", "alarm"))
    new_uri, _ = write_checkpoint(registry, store, "mem://a", secrets, T0 + timedelta(days=1))
    store.write_bytes("mem://a/audit-checkpoints/99999999T000000000000Z-replayed.json", store.read_bytes(old_uri))
    checkpoint, uri, problem = latest_checkpoint(store, "mem://a", secrets)
    assert uri == new_uri and checkpoint.heads["ghost"].seq == 2 and problem is None


def test_a_checkpoint_needs_the_key_in_the_secret_store():
    registry, store, _ = _setup()
    with pytest.raises(InvalidInput, match=CHECKPOINT_SECRET):
        write_checkpoint(registry, store, "mem://a", InMemorySecrets(), T0)
    with pytest.raises(InvalidInput, match="no secret store"):
        write_checkpoint(registry, store, "mem://a", None, T0)
    assert store.objects == {}
