"""The outbox on in-memory fakes: audited events survive a failed publish, carry ids, and go out once per relay."""

from __future__ import annotations

import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import ApproveModel, PromoteModel, RegisterModel, RejectModel, RollbackModel
from modelpilot.domain.model import utcnow
from modelpilot.exceptions import TransientError
from modelpilot.policy import load_policy_text
from modelpilot.service import outbox
from modelpilot.testing import RecordingPublisher, fake_bus

POLICY = """
environments: [dev, staging, prod]
operators: ["alice", "carol", "system:*"]
defaults:
  environments:
    prod:
      approvals: 1
"""


class FlakyPublisher(RecordingPublisher):
    """Refuses the next ``failures`` publish calls (as PutEvents / Event Grid refusing them), then delivers."""

    def __init__(self, failures: int = 0) -> None:
        super().__init__()
        self.failures = failures

    def publish(self, events, *, traceparent=None):
        if self.failures:
            self.failures -= 1
            raise TransientError("the bus is unavailable")
        super().publish(events, traceparent=traceparent)


@pytest.fixture
def bus():
    b = fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore())
    b.services.publisher = FlakyPublisher()
    return b


def upload(bus, pkg):
    return bus.handle(RegisterModel(package_uri=str(pkg), actor="alice", auto_promote=True))


def test_a_publish_that_fails_after_the_commit_is_sent_by_the_retry_exactly_once(bus, make_package):
    pkg = make_package()
    bus.services.publisher.failures = 1
    with pytest.raises(TransientError):
        upload(bus, pkg)  # registered and promoted to dev (committed), the publish failed
    assert bus.services.registry.get_alias("churn", "dev").version == 1
    assert bus.services.publisher.events == []
    retry = upload(bus, pkg)  # the platform's retry: the registration itself is a no-op now
    assert retry.status == "unchanged"
    published = bus.services.publisher.events
    assert [e.name for e in published] == ["ModelRegistered", "ModelPromoted"]
    assert [e.event_id for e in published] == ["churn#1", "churn#2"]
    assert published[1].environment == "dev" and published[1].version == 1
    upload(bus, pkg)
    assert len(bus.services.publisher.events) == 2  # nothing twice


def test_the_next_command_on_the_model_sends_what_a_failed_publish_left(bus, make_package):
    bus.services.publisher.failures = 1
    with pytest.raises(TransientError):
        bus.handle(RegisterModel(package_uri=str(make_package()), actor="alice"))
    bus.handle(PromoteModel(model="churn", environment="dev", actor="alice"))
    assert [(e.name, e.event_id) for e in bus.services.publisher.events] == [
        ("ModelRegistered", "churn#1"),
        ("ModelPromoted", "churn#2"),
    ]


def test_two_relays_in_a_row_publish_nothing_the_second_time(bus, make_package):
    bus.services.publisher.failures = 1
    with pytest.raises(TransientError):
        upload(bus, make_package())
    first = outbox.relay(bus.services)
    second = outbox.relay(bus.services)
    assert first == {"churn": 2} and second == {"churn": 0}
    assert [e.event_id for e in bus.services.publisher.events] == ["churn#1", "churn#2"]
    assert bus.services.registry.outbox_watermark("churn") == 2


def test_outbox_events_equal_the_events_the_handlers_made(bus, make_package):
    """What a consumer receives from the outbox is the event the command produced, plus its id."""
    outcomes = [
        upload(bus, make_package(auc=0.8)),
        upload(bus, make_package(auc=0.9)),
        bus.handle(PromoteModel(model="churn", environment="staging", actor="alice", version=2)),
        bus.handle(ApproveModel(model="churn", version=2, environment="prod", approver="bob", comment="ok")),
        bus.handle(
            RollbackModel(
                model="churn", environment="dev", actor="carol", reason="slo", trigger="alarm:x", evidence={"a": 1}
            )
        ),
        bus.handle(RejectModel(model="churn", version=2, actor="carol", reason="bad")),
    ]
    made = [e for o in outcomes for e in o.events if e.name in outbox.OUTBOX_EVENTS]
    published = bus.services.publisher.events
    assert [e.name for e in made] == [
        "ModelRegistered",
        "ModelPromoted",
        "ModelRegistered",
        "ModelPromoted",
        "ModelPromoted",
        "ModelApproved",
        "ModelRolledBack",
        "ModelRejected",
    ]
    assert published == made  # dataclass equality: every field (the id is not compared)
    assert [e.to_dict()["id"] for e in published] == [f"churn#{n}" for n in range(1, 9)]


def test_history_from_before_the_outbox_is_not_sent_again(make_package):
    bus = fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore())
    registry = bus.services.registry
    registry.supports_outbox = False  # a registry written before the outbox existed
    bus.handle(RegisterModel(package_uri=str(make_package()), actor="alice", auto_promote=True))
    before = len(bus.services.publisher.events)
    registry.supports_outbox = True  # the upgrade
    assert outbox.relay(bus.services) == {"churn": 0}
    assert registry.outbox_watermark("churn") == 2
    bus.handle(PromoteModel(model="churn", environment="staging", actor="alice"))
    assert [e.event_id for e in bus.services.publisher.events[before:]] == ["churn#3"]


def test_an_event_id_survives_serialisation_and_other_events_have_none(bus, make_package):
    upload(bus, make_package())
    detail = bus.services.publisher.events[0].to_dict()
    assert detail["id"] == "churn#1" and detail["event"] == "ModelRegistered"
    assert "event_id" not in detail
    blocked = bus.handle(PromoteModel(model="churn", environment="prod", actor="alice", version=1))
    assert blocked.status == "blocked"
    assert "id" not in bus.services.publisher.events[-1].to_dict()
    assert utcnow()  # the clock used by the fakes still runs


def test_a_timer_tick_sweeps_every_model(bus, make_package):
    from modelpilot.domain.commands import CheckSlos

    bus.services.publisher.failures = 1
    with pytest.raises(TransientError):
        upload(bus, make_package())
    assert bus.services.publisher.events == []
    bus.handle(CheckSlos(actor="system:scheduler"))  # the SLO timer's tick (model=None: every model)
    assert [e.event_id for e in bus.services.publisher.events] == ["churn#1", "churn#2"]
    bus.handle(CheckSlos(actor="system:scheduler"))
    assert len(bus.services.publisher.events) == 2


def rollbacks_notified(bus):
    return [s for s, _ in bus.services.notifier.sent if s == "[modelpilot] ModelRolledBack"]


def test_a_rollback_whose_publish_failed_is_published_and_notified_by_the_next_command_once(bus, make_package):
    upload(bus, make_package(auc=0.8))
    upload(bus, make_package(auc=0.9))
    bus.services.publisher.failures = 1
    with pytest.raises(TransientError):
        bus.handle(RollbackModel(model="churn", environment="dev", actor="carol", reason="errors"))
    assert bus.services.registry.get_alias("churn", "dev").version == 1  # committed
    assert rollbacks_notified(bus) == []
    bus.handle(PromoteModel(model="churn", environment="staging", actor="alice", version=1))
    assert [e.name for e in bus.services.publisher.events].count("ModelRolledBack") == 1
    assert len(rollbacks_notified(bus)) == 1
    outbox.relay(bus.services)
    assert len(rollbacks_notified(bus)) == 1


def test_a_rollback_on_the_normal_path_is_notified_once(bus, make_package):
    upload(bus, make_package(auc=0.8))
    upload(bus, make_package(auc=0.9))
    bus.handle(RollbackModel(model="churn", environment="dev", actor="carol", reason="errors"))
    assert len(rollbacks_notified(bus)) == 1


def test_an_outage_while_the_outbox_is_first_set_up_fails_the_command_and_loses_no_event(make_package):
    """A transient error on the first use of the outbox used to mean "not ready": the command then published
    directly, and when that publish failed too, the next run set the watermark at the chain's head, past the
    records whose events never went out."""
    bus = fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore())
    bus.services.publisher = FlakyPublisher(failures=1)
    registry = bus.services.registry
    read = registry.outbox_watermark
    outage = {"left": 1}

    def watermark(model):
        if outage["left"]:
            outage["left"] -= 1
            raise TransientError("Table Storage answered 503")
        return read(model)

    registry.outbox_watermark = watermark
    pkg = make_package()
    with pytest.raises(TransientError, match="503"):
        upload(bus, pkg)
    assert registry.list_models() == []  # failed before the handler: nothing committed
    with pytest.raises(TransientError, match="the bus is unavailable"):
        upload(bus, pkg)  # committed through the outbox; its publish fails
    upload(bus, pkg)  # the retry's relay sends both, once
    assert [e.event_id for e in bus.services.publisher.events] == ["churn#1", "churn#2"]


def test_a_role_that_may_not_set_up_the_outbox_still_publishes_directly(make_package):
    from modelpilot.exceptions import NotAuthorized

    bus = fake_bus(load_policy_text(POLICY), artifacts=FolderArtifactStore())
    registry = bus.services.registry

    def refused(model, seq):
        raise NotAuthorized("the role may not write the outbox")

    registry.advance_outbox_watermark = refused
    upload(bus, make_package())
    assert bus.services.publisher.names() == ["ModelRegistered", "ModelPromoted"]
