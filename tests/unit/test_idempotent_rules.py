"""Idempotency on business keys, on fakes: copies of a registered package change nothing, automatic
promotions never move an alias back, unknown models and broken policies are never remembered as final.

What these prove: the service rules (``service/lifecycle.py``, ``service/dispatch.py``,
``service/slo/handlers.py``) with in-memory fakes. What they cannot prove: that a cloud store
honours the compare-and-set the rules rely on (tests/integration and tests/entrypoints do that on
moto and Azurite).
"""

from __future__ import annotations

import shutil

import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import HandleAlarm, PromoteModel, RegisterModel, RollbackModel
from modelpilot.exceptions import PolicyError
from modelpilot.policy import load_policy_text
from modelpilot.service.dispatch import LOCK_SECONDS, Delivery, claim_seconds, handle_once
from modelpilot.testing import InMemoryRegistry, fake_bus

POLICY = """
environments: [dev, prod]
defaults:
  rollback:
    prod: {alarms: ["modelpilot/*"]}
"""


def upload(package, key: str) -> Delivery:
    """The delivery an upload trigger makes of ``package`` (key: the object and its version)."""
    command = RegisterModel(
        package_uri=str(package), actor="system:s3-upload", trigger=key, auto_promote=True, source="upload"
    )
    return Delivery(f"upload {key}", command, key)


@pytest.fixture
def bus():
    return fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore())


def dev(bus):
    alias = bus.services.registry.get_alias("churn", "dev")
    return None if alias is None else alias.version


# -- 1. a registered manifest delivered again changes nothing --------------------------------------
def test_a_copy_of_an_old_package_at_a_new_path_does_not_move_dev_back(bus, make_package, tmp_path):
    v1, v2 = make_package(auc=0.8), make_package(auc=0.9)
    assert handle_once(bus, upload(v1, "v1@e1"), function="t")["promotion"]["status"] == "promoted"
    assert handle_once(bus, upload(v2, "v2@e1"), function="t")["promotion"]["status"] == "promoted"
    copy = shutil.copytree(v1, tmp_path / "copy-of-v1")  # an identical re-upload under another key
    reply = handle_once(bus, upload(copy, "copy@e1"), function="t")
    assert reply["status"] == "unchanged" and reply["version"] == 1
    assert reply["promotion"]["status"] == "unchanged"
    assert dev(bus) == 2
    assert [c.to_version for c in bus.services.registry.alias_history("churn", "dev")] == [1, 2]


def test_a_replay_after_a_rollback_does_not_promote_the_rolled_back_version_again(bus, make_package):
    v1, v2 = make_package(auc=0.8), make_package(auc=0.9)
    handle_once(bus, upload(v1, "v1@e1"), function="t")
    handle_once(bus, upload(v2, "v2@e1"), function="t")
    bus.handle(RollbackModel(model="churn", environment="dev", actor="alice", reason="v2 is bad", to_version=1))
    # the idempotency record of v2's upload expired (or the object got a new version): the same manifest again
    reply = handle_once(bus, upload(v2, "v2@e2"), function="t")
    assert reply["status"] == "unchanged" and reply["promotion"]["status"] == "unchanged"
    assert dev(bus) == 1


def test_an_automatic_promotion_landing_after_a_newer_one_leaves_the_newer_in_place(make_package):
    """Two workers: v1's auto-promotion decides after v2's upload was registered and promoted."""
    v1, v2 = make_package(auc=0.8), make_package(auc=0.9)

    class Interleaved(InMemoryRegistry):
        def register_version(self, **kwargs):
            result = super().register_version(**kwargs)
            if result[0].version == 1:  # v2's whole upload runs on another worker right now
                other = RegisterModel(package_uri=str(v2), actor="system:s3-upload", auto_promote=True)
                assert bus.handle(other).data["promotion"]["status"] == "promoted"
            return result

    bus = fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore(), registry=Interleaved())
    first = bus.handle(RegisterModel(package_uri=str(v1), actor="system:s3-upload", auto_promote=True))
    assert first.status == "registered" and first.data["promotion"]["status"] == "skipped"
    assert "never moves an alias back" in first.data["promotion"]["message"]
    assert dev(bus) == 2
    assert [c.to_version for c in bus.services.registry.alias_history("churn", "dev")] == [2]


def test_an_operator_may_still_promote_an_older_version_by_hand(bus, make_package):
    handle_once(bus, upload(make_package(auc=0.8), "v1@e1"), function="t")
    handle_once(bus, upload(make_package(auc=0.9), "v2@e1"), function="t")
    outcome = bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=1))
    assert outcome.status == "promoted" and dev(bus) == 1


def test_a_version_never_promoted_is_promoted_when_its_upload_comes_again(bus, make_package):
    v1 = make_package()
    bus.handle(RegisterModel(package_uri=str(v1), actor="alice"))  # registered without auto-promotion
    reply = handle_once(bus, upload(v1, "v1@e1"), function="t")
    assert reply["status"] == "unchanged" and reply["promotion"]["status"] == "promoted"
    assert dev(bus) == 1


# -- 4. unknown models: one answer, nothing remembered ---------------------------------------------
def test_an_alarm_for_an_unknown_model_that_the_policy_matches_leaves_nothing_behind(bus):
    alarm = HandleAlarm(
        model="ghost",
        environment="prod",
        alarm_name="modelpilot/ghost/prod/errors",
        state="ALARM",
        actor="system:cloudwatch",
        trigger="alarm:modelpilot/ghost/prod/errors#ALARM@t1",
    )
    delivery = Delivery("alarm", alarm, "alarm:modelpilot/ghost/prod/errors#ALARM@t1")
    for _ in range(2):
        reply = handle_once(bus, delivery, function="alarm")
        assert (reply["status"], reply["error"]) == ("failed", "unknown_model")
        assert "duplicate" not in reply
    assert bus.services.idempotency.entries == {}
    assert bus.services.publisher.events == []
    assert bus.services.registry.audit_records("ghost") == []


@pytest.mark.parametrize("state", ["ALARM", "OK"])
def test_an_unknown_model_is_unknown_whatever_the_alarm_state(bus, state):
    alarm = HandleAlarm(model="ghost", environment="dev", alarm_name="team-alarm", state=state, actor="system:x")
    reply = handle_once(bus, Delivery("alarm", alarm, f"k-{state}"), function="alarm")
    assert reply["error"] == "unknown_model" and bus.services.idempotency.entries == {}


# -- 6. a broken policy is not remembered as the event's answer ------------------------------------
class SwitchablePolicy:
    """A policy loader whose policy is broken until ``fix()``."""

    def __init__(self, text: str) -> None:
        self.policy = load_policy_text(text)
        self.broken = True

    def fix(self) -> None:
        self.broken = False

    def __call__(self):
        if self.broken:
            raise PolicyError("s3://models/modelpilot.yaml: the policy is empty", source="s3://models/modelpilot.yaml")
        return self.policy


def test_an_upload_met_by_a_broken_policy_runs_again_once_the_policy_is_fixed(make_package):
    loader = SwitchablePolicy(POLICY)
    bus = fake_bus(artifacts=FolderArtifactStore(), policy_loader=loader)
    delivery = upload(make_package(), "v1@e1")
    failed = handle_once(bus, delivery, function="model_upload")
    assert (failed["status"], failed["error"]) == ("failed", "invalid_policy")
    assert (failed["source"], failed["error_source"]) == (delivery.source, "s3://models/modelpilot.yaml")
    assert bus.services.idempotency.entries == {}  # nothing remembered
    assert bus.services.registry.list_models() == []  # the policy is read before anything changes
    assert bus.services.notifier.sent  # surfaced to people
    loader.fix()
    again = handle_once(bus, delivery, function="model_upload")
    assert "duplicate" not in again and again["status"] == "registered"
    assert again["promotion"]["status"] == "promoted" and dev(bus) == 1


def test_a_permanent_error_that_is_not_configuration_is_still_remembered(bus, tmp_path):
    delivery = upload(tmp_path / "no-such-package", "gone@e1")
    first = handle_once(bus, delivery, function="model_upload")
    assert first["status"] == "failed" and first["error"] == "manifest_missing"
    assert handle_once(bus, delivery, function="model_upload")["duplicate"] is True


# -- 8. the claim's lock follows the invocation's remaining time -----------------------------------
@pytest.mark.parametrize(
    ("remaining_ms", "seconds"),
    [(None, LOCK_SECONDS), (60_000, 60), (59_001, 60), (1, 1), (0, 1), (10**9, LOCK_SECONDS), (float("nan"), 900)],
)
def test_claim_seconds(remaining_ms, seconds):
    assert claim_seconds(remaining_ms) == seconds


def test_handle_once_claims_for_the_time_it_is_given(bus, make_package):
    seen = []
    store = bus.services.idempotency
    begin = store.begin

    def spy(key, *, lock_seconds=LOCK_SECONDS):
        seen.append(lock_seconds)
        return begin(key, lock_seconds=lock_seconds)

    store.begin = spy
    handle_once(bus, upload(make_package(), "v1@e1"), function="t", lock_seconds=42)
    assert seen == [42]


# -- 3. a conditional promotion ---------------------------------------------------------------------
def test_a_promotion_with_from_version_moves_only_from_that_version(bus, make_package):
    handle_once(bus, upload(make_package(auc=0.8), "v1@e1"), function="t")
    bus.handle(RegisterModel(package_uri=str(make_package(auc=0.9)), actor="alice"))
    stale = bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=2, from_version=3))
    assert stale.status == "noop" and "no longer runs v3" in stale.message and dev(bus) == 1
    moved = bus.handle(PromoteModel(model="churn", environment="dev", actor="alice", version=2, from_version=1))
    assert moved.status == "promoted" and dev(bus) == 2
    empty = bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=2, from_version=1))
    assert empty.status == "noop" and "runs nothing" in empty.message
