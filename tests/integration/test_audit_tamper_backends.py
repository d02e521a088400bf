"""The anchored audit against tampering on every registry backend: SQLite, DynamoDB (moto), Table Storage (Azurite).

Each test builds the same small history through the adapter, then edits the
backend's rows directly with its own client (as someone with write access to the
table would), and checks that ``verify_audit`` names the damage. Checkpoints are
signed with an in-memory key and written to the same backend's artifact store
(a folder, S3 on moto, Blob Storage on Azurite); Secrets Manager and Key Vault
themselves are covered by the secrets contract suite.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from modelpilot.adapters.aws.registry import DynamoDbRegistry
from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.adapters.local.registry import SqliteRegistry
from modelpilot.domain.audit import GENESIS, compute_hash
from modelpilot.domain.canary import Canary
from modelpilot.domain.checkpoint import CHECKPOINT_SECRET
from modelpilot.domain.model import Approval
from modelpilot.package.manifest import manifest_digest
from modelpilot.service.audit import adopt_missing_heads, latest_checkpoint, verify_audit, write_checkpoint
from modelpilot.testing import InMemorySecrets
from tests.contract.conftest import _cloud
from tests.support.builders import T0, change, entry, manifest

ENVS = ["dev", "staging", "prod"]


class SqliteRows:
    def __init__(self, registry):
        self.registry = registry

    def _run(self, statement, *args):
        conn = sqlite3.connect(self.registry.path)
        conn.execute(statement, args)
        conn.commit()
        conn.close()

    def delete_record(self, seq):
        self._run("DELETE FROM audit WHERE model='churn' AND seq=?", seq)

    def delete_versions(self):
        self._run("DELETE FROM versions WHERE model='churn'")

    def delete_head(self):
        self._run("DELETE FROM audit_heads WHERE model='churn'")

    def set_alias(self, env, version):
        self._run("UPDATE aliases SET version=? WHERE model='churn' AND environment=?", version, env)

    def set_canary_weight(self, env, weight):
        (doc,) = (
            sqlite3.connect(self.registry.path)
            .execute("SELECT doc FROM canaries WHERE model='churn' AND environment=?", (env,))
            .fetchone()
        )
        edited = json.dumps({**json.loads(doc), "weight": weight})
        self._run("UPDATE canaries SET doc=? WHERE model='churn' AND environment=?", edited, env)

    def rewrite(self, records):
        for r in records:
            self._run(
                "UPDATE audit SET actor=?, prev_hash=?, hash=? WHERE model='churn' AND seq=?",
                r.actor,
                r.prev_hash,
                r.hash,
                r.seq,
            )
        self._run("UPDATE audit_heads SET seq=?, hash=? WHERE model='churn'", records[-1].seq, records[-1].hash)


class DynamoRows:
    def __init__(self, registry):
        from modelpilot.adapters.aws import _registry_items as items

        self.registry, self.items = registry, items

    def delete_record(self, seq):
        key = self.items.key("churn", self.items.audit_key(seq))
        self.registry.client.delete_item(TableName=self.registry.table, Key=key)

    def delete_versions(self):
        for v in self.registry.list_versions("churn"):
            key = self.items.key("churn", self.items.version_key(v.version))
            self.registry.client.delete_item(TableName=self.registry.table, Key=key)

    def delete_head(self):
        self.registry.client.delete_item(TableName=self.registry.table, Key=self.items.head_key("churn"))

    def set_alias(self, env, version):
        self.registry.client.update_item(
            TableName=self.registry.table,
            Key=self.items.key("churn", f"ALIAS#{env}"),
            UpdateExpression="SET version = :v",
            ExpressionAttributeValues={":v": {"N": str(version)}},
        )

    def set_canary_weight(self, env, weight):
        key = self.items.key("churn", self.items.canary_key(env))
        item = self.registry.client.get_item(TableName=self.registry.table, Key=key)["Item"]
        item["doc"] = self.items.doc({**json.loads(item["doc"]["S"]), "weight": weight})
        self.registry.client.put_item(TableName=self.registry.table, Item=item)

    def rewrite(self, records):
        for r in records:
            item = {**self.items.key("churn", self.items.audit_key(r.seq)), "doc": self.items.doc(r.to_dict())}
            self.registry.client.put_item(TableName=self.registry.table, Item=item)
        self.registry.client.put_item(
            TableName=self.registry.table,
            Item={**self.items.head_key("churn"), "seq": {"N": str(records[-1].seq)}, "head": {"S": records[-1].hash}},
        )


class TableRows:
    def __init__(self, registry):
        from modelpilot.adapters.azure import _table_rows as rows

        self.registry, self.rows = registry, rows

    def delete_record(self, seq):
        self.registry.table.delete_entity("churn", self.rows.audit_key(seq))

    def delete_versions(self):
        for v in self.registry.list_versions("churn"):
            self.registry.table.delete_entity("churn", self.rows.version_key(v.version))

    def delete_head(self):
        meta = dict(self.registry.table.get_entity("churn", self.rows.META))
        meta["head"] = ""
        self.registry.table.upsert_entity(meta)

    def set_alias(self, env, version):
        entity = dict(self.registry.table.get_entity("churn", self.rows.alias_key(env)))
        entity["version"] = version
        self.registry.table.upsert_entity(entity)

    def set_canary_weight(self, env, weight):
        entity = dict(self.registry.table.get_entity("churn", self.rows.canary_key(env)))
        entity["doc"] = json.dumps({**json.loads(entity["doc"]), "weight": weight}, sort_keys=True)
        self.registry.table.upsert_entity(entity)

    def rewrite(self, records):
        for r in records:
            self.registry.table.upsert_entity(self.rows.to_audit(r))
        meta = dict(self.registry.table.get_entity("churn", self.rows.META))
        meta.update(seq=records[-1].seq, head=records[-1].hash)
        self.registry.table.upsert_entity(meta)


@pytest.fixture(params=["sqlite", "dynamodb", "azure_table"])
def backend(request, tmp_path):
    """``(registry, raw row editor)`` holding churn with 6 audit records."""
    if request.param == "sqlite":
        registry = SqliteRegistry(tmp_path / "registry.db")
        rows = SqliteRows(registry)
    elif request.param == "dynamodb":
        registry = _cloud("aws", "make_registry", request)
        rows = DynamoRows(registry)
    else:
        registry = _cloud("azure", "make_registry", request)
        rows = TableRows(registry)
    for seed in "ab":
        m = manifest(seed=seed)
        digest = manifest_digest(m)
        registry.register_version(
            manifest=m,
            manifest_digest=digest,
            package_uri=f"pkg://{seed}",
            registered_by="alice",
            registered_at=T0,
            source="upload",
            external_id=None,
            status="registered",
            audit=entry(action="register", evidence={"manifest_digest": digest}),
        )
    for revision, (frm, to) in enumerate([(None, 1), (1, 2)], start=1):
        registry.move_alias(
            change=change("churn", "dev", revision, frm, to),
            expected_revision=revision - 1,
            audit=entry(action="promote", environment="dev", from_version=frm, to_version=to),
        )
    registry.add_approval(
        Approval("churn", 2, "prod", "bob", T0 + timedelta(hours=1)),
        entry(action="approve", actor="bob", environment="prod", to_version=2),
    )
    registry.append_audit(entry(action="alarm", environment="prod"))
    assert verify_audit(registry, environments=ENVS).ok
    return registry, rows


def _problem(report):
    return "; ".join(v.problem for v in report.verdicts if not v.ok)


def test_last_record_deleted(backend):
    registry, rows = backend
    rows.delete_record(6)
    report = verify_audit(registry, environments=ENVS)
    assert not report.ok and "records 6..6 were deleted" in _problem(report)


def test_canary_edited(backend):
    registry, rows = backend
    canary = Canary("churn", "prod", 1, 2, 10, 0, "running", 1, T0, T0, "alice", T0, steps=(10, 50, 100))
    split = {"stable_version": 1, "candidate_version": 2, "weight": 10, "step": 0, "state": "running"}
    evidence = {"canary": {**split, "revision": 1, "failures": 0}, "steps": [10, 50, 100]}
    registry.save_canary(
        canary,
        expected_revision=0,
        audit=entry(action="canary_start", environment="prod", from_version=1, to_version=2, evidence=evidence),
    )
    assert verify_audit(registry, environments=ENVS).ok
    rows.set_canary_weight("prod", 90)
    assert registry.get_canary("churn", "prod").weight == 90
    report = verify_audit(registry, environments=ENVS)
    assert not report.ok and "canary prod has weight 90 in the state but the audit replays to 10" in _problem(report)


def test_version_rows_deleted(backend):
    registry, rows = backend
    rows.delete_versions()
    report = verify_audit(registry, environments=ENVS)
    assert [v.model for v in report.verdicts] == ["churn"]
    assert not report.ok and "version rows deleted: v1, v2" in _problem(report)


def test_alias_edited(backend):
    registry, rows = backend
    rows.set_alias("dev", 1)
    report = verify_audit(registry, environments=ENVS)
    assert not report.ok and "alias dev is v1 at revision 2" in _problem(report)


@pytest.fixture
def checkpoint_store(request, backend, tmp_path):
    """The artifact store of the registry's own backend (folder, S3 on moto, Blob on Azurite) and a root in it."""
    registry = backend[0]
    if isinstance(registry, SqliteRegistry):
        return FolderArtifactStore(), str(tmp_path / "data")
    kind = "aws" if isinstance(registry, DynamoDbRegistry) else "azure"
    return _cloud(kind, "make_artifact_store", request)


def test_chain_recomputed_with_its_head_is_caught_only_by_the_checkpoint(backend, checkpoint_store):
    registry, rows = backend
    artifacts, root = checkpoint_store
    secrets = InMemorySecrets({CHECKPOINT_SECRET: "k" * 64})
    write_checkpoint(registry, artifacts, root, secrets, T0 + timedelta(days=1), ENVS)
    chain = registry.audit_records("churn")
    prev, forged = GENESIS, []
    for record in chain:
        body = replace(record, actor="mallory" if record.seq == 6 else record.actor, prev_hash=prev, hash="")
        forged.append(replace(body, hash=compute_hash(body.body())))
        prev = forged[-1].hash
    rows.rewrite(forged[5:])
    assert verify_audit(registry, environments=ENVS).ok  # the rows alone cannot tell: the documented limit
    checkpoint, uri, problem = latest_checkpoint(artifacts, root, secrets)
    assert checkpoint is not None and problem is None
    report = verify_audit(registry, checkpoint=checkpoint, checkpoint_uri=uri, environments=ENVS)
    assert not report.ok and "record 6 differs from the checkpoint" in _problem(report)


def test_a_missing_head_is_named_until_an_operator_adopts_it(backend):
    """A chain from before heads were kept (here: its head deleted) fails verify until adopted on purpose.
    Table Storage never adopts: its head lives in META, so a missing one can only mean tampering."""
    registry, rows = backend
    rows.delete_head()
    assert "chain head is missing" in _problem(verify_audit(registry, environments=ENVS))
    adopted = adopt_missing_heads(registry, environments=ENVS)
    if isinstance(rows, TableRows):
        assert adopted == {} and not verify_audit(registry, environments=ENVS).ok
    else:
        assert adopted == {"churn": registry.audit_heads()["churn"]} and adopted["churn"].seq == 6
        assert verify_audit(registry, environments=ENVS).ok


def test_adoption_refuses_a_chain_cut_below_the_checkpoint(backend, checkpoint_store):
    registry, rows = backend
    artifacts, root = checkpoint_store
    secrets = InMemorySecrets({CHECKPOINT_SECRET: "k" * 64})
    write_checkpoint(registry, artifacts, root, secrets, T0 + timedelta(days=1), ENVS)
    checkpoint, _, _ = latest_checkpoint(artifacts, root, secrets)
    rows.delete_head()
    rows.delete_record(6)
    assert adopt_missing_heads(registry, checkpoint=checkpoint, environments=ENVS) == {}
    report = verify_audit(registry, checkpoint=checkpoint, environments=ENVS)
    assert not report.ok and "records after seq 5 were deleted" in _problem(report)
