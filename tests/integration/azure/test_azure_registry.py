"""What only the Table Storage registry has to get right (the shared behaviour is in tests/contract)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelpilot.domain.audit import verify_chain
from modelpilot.domain.model import Approval, FeatureSpec
from modelpilot.exceptions import PackageError, PayloadTooLarge
from tests.support import azure as az
from tests.support.builders import T0, change, entry, manifest


@pytest.fixture
def registry(request):
    return az.make_registry(request)


def register(registry, m, digest="a" * 64):
    return registry.register_version(
        manifest=m,
        manifest_digest=digest,
        package_uri="az://models/churn/v1",
        registered_by="alice",
        registered_at=T0,
        source="upload",
        external_id=None,
        status="registered",
        audit=entry(),
    )


def test_a_valid_manifest_longer_than_a_table_property_is_registered_and_read_back(registry):
    """900 features make a ~69 KB manifest: more than the 64 KiB a property holds, far below the 1 MiB limit."""
    import json

    features = tuple(FeatureSpec(f"feature_{i:05d}_{'x' * 40}", "numeric", 0.0, 1.0) for i in range(900))
    big = replace(manifest(), features=features)
    assert len(json.dumps(big.to_dict())) > 65_536
    version, created = register(registry, big)
    assert created and version.version == 1
    assert registry.get_version("churn", 1).manifest == big
    assert registry.find_version("churn", manifest_digest="a" * 64).manifest == big


def test_a_manifest_too_large_even_compressed_is_refused_and_nothing_is_written(registry):
    import secrets

    # ~3 MB of random text: more than a 1 MiB entity holds even compressed (a registry call is not size-checked
    # the way a manifest file is, so this is the adapter's own last line)
    noise = tuple(FeatureSpec(secrets.token_urlsafe(2400), "numeric", 0.0, 1.0) for _ in range(1200))
    with pytest.raises(PackageError, match="Table Storage entity"):
        register(registry, replace(manifest(), features=noise))
    assert registry.list_models() == [] and registry.audit_records("churn") == []


def test_a_reason_larger_than_a_table_request_is_payload_too_large_and_nothing_is_written(registry):
    register(registry, manifest())
    before = registry.audit_records("churn")
    with pytest.raises(PayloadTooLarge):
        registry.append_audit(entry(reason="x" * 5_000_000))
    assert registry.audit_records("churn") == before


def test_keys_hold_characters_azure_tables_refuse(registry):
    register(registry, manifest())
    odd = "team/ml#1?ops\\lead@contoso.com"
    assert registry.add_approval(Approval("churn", 1, "prod", odd, T0), entry(action="approve")) is True
    assert registry.add_approval(Approval("churn", 1, "prod", odd, T0), entry(action="approve")) is False
    assert [a.approver for a in registry.list_approvals("churn", 1, "prod")] == [odd]


def test_rows_are_one_partition_per_model_with_documented_keys(registry):
    register(registry, manifest())
    registry.move_alias(change=change("churn", "prod", 1, None, 1), expected_revision=0, audit=entry(action="promote"))
    keys = sorted(e["RowKey"] for e in registry.table.query_entities("PartitionKey eq 'churn'"))
    assert keys == [
        "ALIAS:prod",
        "AUDIT:0000000001",
        "AUDIT:0000000002",
        "HIST:prod:0000000001",
        "META",
        "VERSION:0000000001",
    ]
    assert not any(c in k for k in keys for c in "#/\\?")
    meta = registry.table.get_entity("churn", "META")
    records = registry.audit_records("churn")
    assert (meta["seq"], meta["head"], meta["versions"]) == (2, records[-1].hash, 1)
    assert verify_chain("churn", records).ok


def test_a_move_that_lands_between_our_read_and_our_commit_wins_and_ours_is_a_conflict(registry):
    from modelpilot.adapters.azure.registry import TableRegistry
    from modelpilot.exceptions import ConcurrencyConflict

    register(registry, manifest())
    register(registry, manifest(seed="b"), digest="b" * 64)
    registry.move_alias(change=change("churn", "prod", 1, None, 1), expected_revision=0, audit=entry(action="promote"))
    other = TableRegistry(registry.table)
    theirs = change("churn", "prod", 2, 1, 2, trigger="theirs")

    class Interrupted(TableRegistry):
        """Lets the other writer commit right after this one read the alias (the race window)."""

        fired = False

        def _audit_ops(self, *args, **kwargs):
            if not self.fired:
                self.fired = True
                other.move_alias(change=theirs, expected_revision=1, audit=entry(action="promote"))
            return super()._audit_ops(*args, **kwargs)

    ours = change("churn", "prod", 2, 1, 1, trigger="ours")
    with pytest.raises(ConcurrencyConflict):
        Interrupted(registry.table).move_alias(change=ours, expected_revision=1, audit=entry(action="rollback"))
    assert registry.alias_history("churn", "prod")[-1] == theirs
    assert registry.get_alias("churn", "prod").version == 2
    assert [r.action for r in registry.audit_records("churn")] == ["test", "test", "promote", "promote"]
    assert verify_chain("churn", registry.audit_records("churn")).ok


class LostAnswer:
    """A registry whose first transaction commits but whose caller never hears so (the SDK retries and
    sees 409/412), as when a response is lost on the way back."""

    def __new__(cls, table):
        from modelpilot.adapters.azure.registry import TableRegistry

        class Registry(TableRegistry):
            lost = 0

            def _submit(self, ops):
                committed = super()._submit(ops)
                if committed and not self.lost:
                    self.lost += 1
                    return False
                return committed

        return Registry(table)


def test_a_committed_transaction_whose_answer_was_lost_counts_as_done(registry):
    flaky = LostAnswer(registry.table)
    version, created = register(flaky, manifest())
    assert (version.version, created) == (1, True)
    flaky.lost = 0
    alias = flaky.move_alias(
        change=change("churn", "prod", 1, None, 1), expected_revision=0, audit=entry(action="promote")
    )
    assert (alias.version, alias.revision) == (1, 1)
    flaky.lost = 0
    assert flaky.add_approval(Approval("churn", 1, "prod", "bob", T0), entry(action="approve")) is True
    assert [r.action for r in registry.audit_records("churn")] == ["test", "promote", "approve"]
    assert len(registry.alias_history("churn", "prod")) == 1
    again, created_again = register(registry, manifest())  # a real duplicate is still "not created"
    assert (again.version, created_again) == (1, False)
