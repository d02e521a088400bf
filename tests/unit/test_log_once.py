"""Each warning is one line: with log-based events and notifications (a cloud backend with no event bus, topic or
Event Grid), an event or a rejected delivery used to be written twice on stderr, once by the publisher (or the
dispatch) and again by the notifier."""

from __future__ import annotations

import logging

import pytest

from modelpilot.adapters.log import LogNotifier, LogPublisher
from modelpilot.domain.commands import Command
from modelpilot.domain.events import ModelRolledBack
from modelpilot.exceptions import InvalidEvent
from modelpilot.service.dispatch import reject
from modelpilot.service.messagebus import MessageBus, Outcome, Services
from modelpilot.testing import InMemoryArtifactStore, InMemoryRegistry

EVENT = ModelRolledBack(
    model="churn", environment="prod", from_version=3, to_version=2, revision=4, actor="alice", reason="errors"
)


class Roll(Command):
    pass


def roll_back(cmd, svc):
    return Outcome("rolled_back", "churn prod rolled back", {}, [EVENT])


def _bus(notifier: LogNotifier) -> MessageBus:
    services = Services(
        registry=InMemoryRegistry(),
        artifacts=InMemoryArtifactStore(),
        publisher=LogPublisher(),
        notifier=notifier,
        policy_loader=lambda: None,  # type: ignore[arg-type,return-value]
    )
    return MessageBus(services, command_handlers={"Roll": f"{__name__}:roll_back"}, event_handlers={})


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.WARNING, logger="modelpilot")
    logging.getLogger("modelpilot").propagate = True  # caplog listens on the root logger
    return caplog


def test_an_event_with_no_bus_and_no_topic_is_one_warning(lines):
    _bus(LogNotifier(events_logged=True)).handle(Roll())
    about = [r for r in lines.records if "ModelRolledBack" in r.getMessage()]
    assert len(about) == 1 and about[0].levelno == logging.WARNING


def test_with_a_bus_the_notifier_still_writes_the_event_notification(lines):
    notifier = LogNotifier(events_logged=False)  # the publisher is EventBridge / Event Grid: the log has no event line
    notifier.notify("[modelpilot] ModelRolledBack", "churn prod: v3 -> v2", attributes={"event": "ModelRolledBack"})
    assert len([r for r in lines.records if "ModelRolledBack" in r.getMessage()]) == 1


def test_a_rejected_delivery_is_one_error_line_not_an_error_and_a_warning(lines):
    reject(_bus(LogNotifier(events_logged=True)), InvalidEvent("bad shape"), function="model_upload", source="s3")
    about = [r for r in lines.records if "bad shape" in r.getMessage()]
    assert [r.levelno for r in about] == [logging.ERROR]
