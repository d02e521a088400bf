"""The MLflow webhook edge and the MLflow handlers on fakes: signatures, freshness, replays, loops, approvals.

Signatures are made by MLflow's own signing function (``mlflow.webhooks.delivery._generate_hmac_signature``, the
code ``mlflow server`` runs), so the check is proven against what MLflow really sends, not against a copy of our
own reading of it. What this cannot prove: the HTTP transport and MLflow's REST API (tests/integration/mlflow).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid

import pytest

from modelpilot.domain.commands import PromoteModel, RollbackModel
from modelpilot.entrypoints.mlflow import TOLERANCE_SECONDS, WebhookRefused, receive, verify
from modelpilot.exceptions import PolicyError
from modelpilot.policy import parse_policy
from modelpilot.ports import MlflowRun
from modelpilot.testing import InMemoryMlflowRegistry, InMemorySecrets, fake_bus

SECRET = "whsec-" + "k" * 24
SECRET_NAME = "modelpilot-mlflow-webhook"
POLICY = {
    "environments": ["staging", "prod"],
    "defaults": {"environments": {"prod": {"approvals": 1, "approvers": ["mlflow:**"]}}},
    "mlflow": {"aliases": {"staging": "challenger", "prod": "champion"}, "approval_tag_prefix": "approve."},
}


def _sign(body: bytes, *, secret: str = SECRET, stamp: int | None = None, delivery_id: str | None = None):
    from mlflow.webhooks.delivery import _generate_hmac_signature

    delivery_id = delivery_id or str(uuid.uuid4())
    stamp = str(int(time.time()) if stamp is None else stamp)
    signature = _generate_hmac_signature(secret, delivery_id, stamp, body.decode())
    return {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": signature,
    }


def _body(entity: str, action: str, data: dict) -> bytes:
    # the exact serialisation MLflow uses: json.dumps with its default separators
    return json.dumps(
        {"entity": entity, "action": action, "timestamp": "2026-12-02T10:00:00+00:00", "data": data}
    ).encode()


@pytest.fixture
def world():
    mlflow = InMemoryMlflowRegistry()
    run = MlflowRun("r1", "0", "alice", "FINISHED", metrics={"auc": 0.9}, params={"C": "1"})
    mlflow.add_version("churn", "1", {"MLmodel": b"flavors: {}\n", "model/weights.bin": b"\x00\x01" * 9}, run=run)
    bus = fake_bus(parse_policy(POLICY), mlflow=mlflow, secrets=InMemorySecrets({SECRET_NAME: SECRET}))
    return bus, mlflow


def _send(bus, body: bytes, headers=None):
    return receive(bus, headers or _sign(body), body, secret_name=SECRET_NAME)


def _created(version: str = "1") -> bytes:
    return _body(
        "model_version",
        "created",
        {"name": "churn", "version": version, "source": "models:/m-1", "run_id": None, "tags": {}, "description": None},
    )


# -- the signature ----------------------------------------------------------------------------
def test_mlflows_own_signature_verifies_and_any_change_is_refused():
    body = _created()
    headers = _sign(body)
    assert verify(headers, body, SECRET) == headers["X-MLflow-Delivery-Id"]
    with pytest.raises(WebhookRefused, match="does not match"):
        verify(headers, body.replace(b'"1"', b'"2"'), SECRET)
    with pytest.raises(WebhookRefused, match="does not match"):
        verify(headers, body, SECRET + "x")
    with pytest.raises(WebhookRefused, match="does not match"):
        verify({**headers, "X-MLflow-Delivery-Id": str(uuid.uuid4())}, body, SECRET)
    with pytest.raises(WebhookRefused, match="needs"):
        verify({k: v for k, v in headers.items() if k != "X-MLflow-Signature"}, body, SECRET)
    with pytest.raises(WebhookRefused, match="does not match"):
        verify({**headers, "X-MLflow-Signature": "v1,not-base64!"}, body, SECRET)


def test_header_names_are_case_insensitive_and_one_of_several_signatures_may_match():
    body = _created()
    headers = {k.lower(): v for k, v in _sign(body).items()}
    headers["x-mlflow-signature"] = "v1,AAAA " + headers["x-mlflow-signature"]
    assert verify(headers, body, SECRET)


@pytest.mark.parametrize("skew", [TOLERANCE_SECONDS + 1, -(TOLERANCE_SECONDS + 1)])
def test_a_stale_or_future_timestamp_is_refused_even_when_signed(world, skew):
    bus, _ = world
    body = _created()
    status, reply = _send(bus, body, _sign(body, stamp=int(time.time()) - skew))
    assert status == 401 and "stale" in reply["message"]
    assert bus.services.registry.list_models() == []


def test_an_unsigned_or_wrongly_signed_request_changes_nothing(world):
    bus, _ = world
    body = _created()
    assert _send(bus, body, {"Content-Type": "application/json"})[0] == 401
    assert _send(bus, body, _sign(body, secret="guessed"))[0] == 401
    assert bus.services.registry.list_models() == []


def test_nothing_of_the_secret_or_the_body_is_logged(world, caplog):
    bus, _ = world
    caplog.set_level(logging.DEBUG)
    body = _created()
    _send(bus, body, _sign(body, secret="wrong"))
    _send(bus, body)
    _send(bus, b"{not json", _sign(b"{not json"))
    assert caplog.records
    text = caplog.text + json.dumps([r.__dict__ for r in caplog.records], default=str)
    assert SECRET not in text and "model/weights.bin" not in text


# -- registration ------------------------------------------------------------------------------
def test_created_registers_with_digests_computed_while_copying_and_a_replay_changes_nothing(world):
    bus, mlflow = world
    body = _created()
    headers = _sign(body)
    status, reply = _send(bus, body, headers)
    assert (status, reply["status"]) == (200, "registered")
    version = bus.services.registry.get_version("churn", 1)
    assert (version.source, version.external_id, version.manifest.metrics) == ("mlflow", "churn/1", {"auc": 0.9})
    digests = {a.path: a.sha256 for a in version.manifest.artifacts}
    for path, data in mlflow.files[("churn", "1")].items():
        assert digests[path] == hashlib.sha256(data).hexdigest()
    record = json.loads(
        bus.services.artifacts.read_bytes(bus.services.artifacts.join(version.package_uri, "mlflow-run.json"))
    )
    assert record["params"] == {"C": "1"} and record["user_id"] == "alice"
    assert version.manifest.lineage.built_by == "alice" and version.manifest.lineage.run_id == "r1"

    replayed = _send(bus, body, headers)
    assert replayed[0] == 200 and replayed[1]["duplicate"] is True
    assert len(bus.services.registry.list_versions("churn")) == 1


def test_a_malformed_payload_is_answered_400_and_notified(world):
    bus, _ = world
    body = _body("model_version", "created", {"name": "churn", "version": "one"})
    status, reply = _send(bus, body)
    assert status == 400 and reply["status"] == "failed" and "version" in reply["message"]
    assert bus.services.notifier.sent


def test_an_event_modelpilot_does_not_act_on_is_ignored(world):
    bus, _ = world
    status, reply = _send(bus, _body("registered_model", "created", {"name": "churn", "tags": {}, "description": None}))
    assert (status, reply["status"]) == (200, "ignored")


def test_an_artifact_whose_size_differs_from_mlflows_listing_is_refused(world, monkeypatch):
    bus, mlflow = world
    from modelpilot.ports import MlflowFile

    monkeypatch.setattr(mlflow, "artifact_files", lambda n, v: [MlflowFile("MLmodel", 999)])
    status, reply = _send(bus, _created())
    assert status == 422 and reply["error"] == "size_mismatch"
    assert bus.services.registry.list_models() == []


# -- aliases, echoes, staleness -----------------------------------------------------------------
def _alias(alias: str, version: str) -> bytes:
    return _body("model_version_alias", "created", {"name": "churn", "alias": alias, "version": version})


def test_an_alias_requests_a_promotion_and_modelpilots_own_alias_write_does_not_loop(world):
    bus, mlflow = world
    _send(bus, _created())
    mlflow.aliases[("churn", "challenger")] = "1"  # a person sets the alias in MLflow
    status, reply = _send(bus, _alias("challenger", "1"))
    assert (status, reply["status"]) == (200, "promoted")
    assert bus.services.registry.get_alias("churn", "staging").version == 1
    assert mlflow.tags[("churn", "1")]["modelpilot.staging"] == "promoted"

    # an operator promotes v2 in ModelPilot (CLI or API): ModelPilot sets the MLflow alias itself
    mlflow.add_version("churn", "2", {"MLmodel": b"v2"}, run=MlflowRun("r2", "0", "bob", "FINISHED", {"auc": 0.95}))
    _send(bus, _created("2"))
    bus.handle(PromoteModel(model="churn", environment="staging", actor="user:ops", version=2))
    assert mlflow.aliases[("churn", "challenger")] == "2"
    # MLflow sends the webhook for that write: it is recognised and ignored (the marker is consumed)
    status, reply = _send(bus, _alias("challenger", "2"))
    assert reply["status"] == "ignored" and "itself" in reply["message"]
    history = bus.services.registry.alias_history("churn", "staging")
    assert [(c.action, c.to_version) for c in history] == [("promote", 1), ("promote", 2)]


def test_a_stale_alias_event_is_ignored(world):
    bus, mlflow = world
    _send(bus, _created())
    mlflow.aliases[("churn", "challenger")] = "1"
    _send(bus, _alias("challenger", "1"))
    mlflow.add_version("churn", "2", {"MLmodel": b"v2"}, run=MlflowRun("r2", "0", "bob", "FINISHED", {"auc": 0.95}))
    mlflow.aliases[("churn", "challenger")] = "1"  # the alias moved on before the event for v2 arrived
    _status, reply = _send(bus, _alias("challenger", "2"))
    assert reply["status"] == "ignored" and "stale" in reply["message"]
    assert bus.services.registry.get_alias("churn", "staging").version == 1


def test_an_alias_not_in_the_policy_is_ignored(world):
    bus, mlflow = world
    _send(bus, _created())
    mlflow.aliases[("churn", "shadow")] = "1"
    assert _send(bus, _alias("shadow", "1"))[1]["status"] == "ignored"
    assert bus.services.registry.get_alias("churn", "staging") is None


def test_an_alias_event_for_a_version_never_announced_imports_it_first(world):
    bus, mlflow = world
    mlflow.aliases[("churn", "challenger")] = "1"
    _status, reply = _send(bus, _alias("challenger", "1"))
    assert reply["status"] == "promoted" and bus.services.registry.get_version("churn", 1).external_id == "churn/1"


# -- approvals and blocks -------------------------------------------------------------------------
def _tag(key: str, value: str, version: str = "1") -> bytes:
    return _body("model_version_tag", "set", {"name": "churn", "version": version, "key": key, "value": value})


def test_an_approval_tag_counts_for_the_gate_and_a_blocked_promotion_is_visible_in_mlflow(world):
    bus, mlflow = world
    _send(bus, _created())
    mlflow.aliases[("churn", "challenger")] = "1"
    _send(bus, _alias("challenger", "1"))
    mlflow.aliases[("churn", "champion")] = "1"
    _status, reply = _send(bus, _alias("champion", "1"))
    assert reply["status"] == "blocked"
    assert mlflow.tags[("churn", "1")]["modelpilot.prod"] == "blocked"
    assert "approvals" in json.loads(mlflow.tags[("churn", "1")]["modelpilot.prod.report"])["failed_gates"]
    assert ("churn", "champion") not in mlflow.aliases  # prod holds nothing: the alias is taken back

    _status, reply = _send(bus, _tag("approve.prod", "alice@example.com"))
    assert reply["status"] == "approved" and reply["approver"] == "mlflow:alice@example.com"
    mlflow.aliases[("churn", "champion")] = "1"
    assert _send(bus, _alias("champion", "1"))[1]["status"] == "promoted"


def test_other_tags_and_modelpilots_own_tags_never_approve(world):
    bus, _ = world
    _send(bus, _created())
    for key in ("modelpilot.prod", "team", "approve"):
        assert _send(bus, _tag(key, "alice"))[1]["status"] == "ignored"
    assert bus.services.registry.list_approvals("churn", 1, "prod") == []
    status, reply = _send(bus, _tag("approve.prod", "two words"))
    assert status == 422 and reply["status"] == "failed" and reply["error"] == "invalid_event"


def test_the_approval_prefix_may_not_overlap_modelpilots_tags():
    with pytest.raises(PolicyError, match="overlaps"):
        parse_policy({**POLICY, "mlflow": {"approval_tag_prefix": "modelpilot.ok."}})
    with pytest.raises(PolicyError, match="not in"):
        parse_policy({**POLICY, "mlflow": {"aliases": {"qa": "tester"}}})


def test_a_failed_write_back_is_notified_and_does_not_undo_the_decision(world):
    bus, mlflow = world
    _send(bus, _created())
    mlflow.aliases[("churn", "challenger")] = "1"
    mlflow.fail_writes = True
    _status, reply = _send(bus, _alias("challenger", "1"))
    assert reply["status"] == "promoted"
    assert bus.services.registry.get_alias("churn", "staging").version == 1
    assert any("write-back" in subject for subject, _ in bus.services.notifier.sent)
    follow = reply["follow_ups"][-1]
    assert follow["status"] == "failed" and "modelpilot mlflow sync" in follow["message"]


def test_a_rollback_moves_the_alias_back(world):
    bus, mlflow = world
    _send(bus, _created())
    mlflow.add_version("churn", "2", {"MLmodel": b"v2"}, run=MlflowRun("r2", "0", "bob", "FINISHED", {"auc": 0.95}))
    _send(bus, _created("2"))
    for version in ("1", "2"):
        mlflow.aliases[("churn", "challenger")] = version
        _send(bus, _alias("challenger", version))
    outcome = bus.handle(RollbackModel(model="churn", environment="staging", actor="user:ops", reason="bad"))
    assert outcome.status == "rolled_back"
    assert mlflow.aliases[("churn", "challenger")] == "1"
    assert mlflow.tags[("churn", "2")]["modelpilot.staging"] == "rolled_back"


def test_mlflow_sync_repairs_a_failed_write_back(world):
    from modelpilot.domain.commands import SyncMlflow

    bus, mlflow = world
    _send(bus, _created())
    mlflow.fail_writes = True
    bus.handle(PromoteModel(model="churn", environment="staging", actor="user:ops", version=1))
    assert ("churn", "challenger") not in mlflow.aliases
    mlflow.fail_writes = False
    outcome = bus.handle(SyncMlflow(model="churn", actor="user:ops"))
    assert outcome.status == "recorded" and mlflow.aliases[("churn", "challenger")] == "1"
    assert ("churn", "champion") not in mlflow.aliases  # prod holds nothing


def test_a_late_write_back_does_not_undo_a_newer_alias_request(world):
    """Found by benchmarks/mlflow_webhook.py: the write-back of v1's promotion ran after a person had already
    moved the alias to v2; it set the alias back to v1, and v2's own webhook was then ignored as stale."""
    from modelpilot.domain.events import ModelPromoted
    from modelpilot.service.mlflow.sync import on_model_promoted

    bus, mlflow = world
    _send(bus, _created())
    mlflow.add_version("churn", "2", {"MLmodel": b"v2"}, run=MlflowRun("r2", "0", "bob", "FINISHED", {"auc": 0.95}))
    _send(bus, _created("2"))
    mlflow.aliases[("churn", "challenger")] = "1"
    _send(bus, _alias("challenger", "1"))
    mlflow.aliases[("churn", "challenger")] = "2"  # a person's newer request, its webhook still on the way
    digest = bus.services.registry.audit_records("churn")[-1].gate_report_digest
    late = on_model_promoted(ModelPromoted("churn", "staging", 1, None, 1, "system:mlflow", digest or ""), bus)
    assert "left at v2" in late.message
    assert mlflow.aliases[("churn", "challenger")] == "2"
    assert _send(bus, _alias("challenger", "2"))[1]["status"] == "promoted"
    assert bus.services.registry.get_alias("churn", "staging").version == 2


def test_a_late_write_back_does_not_undo_a_person_setting_the_alias_back(world):
    """Found by the benchmark too: v2 was promoted through the alias (replacing v1); a person set the alias back
    to v1 before v2's write-back ran, and the write-back, seeing the replaced version, moved it to v2 again."""
    from modelpilot.domain.events import ModelPromoted
    from modelpilot.service.mlflow.sync import on_model_promoted

    bus, mlflow = world
    _send(bus, _created())
    mlflow.add_version("churn", "2", {"MLmodel": b"v2"}, run=MlflowRun("r2", "0", "bob", "FINISHED", {"auc": 0.95}))
    _send(bus, _created("2"))
    for version in ("1", "2"):
        mlflow.aliases[("churn", "challenger")] = version
        _send(bus, _alias("challenger", version))
    mlflow.aliases[("churn", "challenger")] = "1"  # the person's newer request
    digest = bus.services.registry.audit_records("churn")[-1].gate_report_digest or ""
    on_model_promoted(ModelPromoted("churn", "staging", 2, 1, 2, "system:mlflow", digest), bus)
    assert mlflow.aliases[("churn", "challenger")] == "1"
    assert _send(bus, _alias("challenger", "1"))[1]["status"] == "promoted"
    # a promotion made in ModelPilot itself still moves MLflow's alias from the replaced version
    bus.handle(PromoteModel(model="churn", environment="staging", actor="user:ops", version=2))
    assert mlflow.aliases[("churn", "challenger")] == "2"


def test_an_mlflow_approval_counts_only_where_the_policy_names_mlflow_approvers():
    """An empty approvers list means "anyone" for people who approve through the CLI or the APIs; an MLflow tag's
    claimed name must not ride on that."""
    policy = {**POLICY, "defaults": {"environments": {"prod": {"approvals": 1}}}}
    mlflow = InMemoryMlflowRegistry()
    mlflow.add_version("churn", "1", {"MLmodel": b"x"}, run=MlflowRun("r1", "0", "alice", "FINISHED", {"auc": 0.9}))
    bus = fake_bus(parse_policy(policy), mlflow=mlflow, secrets=InMemorySecrets({SECRET_NAME: SECRET}))
    _send(bus, _created())
    status, reply = _send(bus, _tag("approve.prod", "alice"))
    assert status == 422 and reply["error"] == "not_authorized" and "mlflow:**" in reply["message"]
    assert bus.services.registry.list_approvals("churn", 1, "prod") == []
