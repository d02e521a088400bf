"""Spans per command and counters for promotions, blocked promotions and rollbacks."""

from __future__ import annotations

import json
import logging

import pytest

from modelpilot import telemetry
from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import PromoteModel, RegisterModel, RollbackModel
from modelpilot.policy import load_policy_text
from modelpilot.testing import fake_bus


@pytest.fixture(scope="module")
def otel():
    return telemetry.configure_in_memory()


def total(otel, name, **attrs):
    return sum(v for a, v in otel.metric_points(name) if all(a.get(k) == x for k, x in attrs.items()))


def test_commands_produce_spans_metrics_and_traceparent(otel, make_package):
    otel.clear()
    bus = fake_bus(
        load_policy_text("defaults: {environments: {staging: {thresholds: ['auc >= 0.9']}}}"),
        artifacts=FolderArtifactStore(),
    )
    before = {
        n: total(otel, n, model="tele")
        for n in ("modelpilot.promotions", "modelpilot.promotions.blocked", "modelpilot.rollbacks")
    }
    for auc in (0.95, 0.96):
        bus.handle(RegisterModel(package_uri=str(make_package("tele", auc=auc)), actor="alice"))
    bus.handle(PromoteModel(model="tele", environment="dev", actor="alice", version=1))
    bus.handle(PromoteModel(model="tele", environment="dev", actor="alice", version=2))
    bus.handle(RegisterModel(package_uri=str(make_package("tele", auc=0.5)), actor="alice"))
    bus.handle(PromoteModel(model="tele", environment="dev", actor="alice", version=3))
    blocked = bus.handle(PromoteModel(model="tele", environment="staging", actor="alice", version=3))
    assert blocked.status == "blocked"
    bus.handle(RollbackModel(model="tele", environment="dev", actor="carol", reason="x"))

    spans = otel.finished_spans()
    names = [s.name for s in spans]
    assert names.count("RegisterModel") == 3 and names.count("PromoteModel") == 4 and "RollbackModel" in names
    promote = [s for s in spans if s.name == "PromoteModel"][-1]
    assert promote.attributes["modelpilot.model"] == "tele"
    assert promote.attributes["modelpilot.environment"] == "staging"
    assert promote.attributes["modelpilot.version"] == 3
    assert promote.attributes["modelpilot.outcome"] == "blocked"

    assert total(otel, "modelpilot.promotions", model="tele") - before["modelpilot.promotions"] == 3
    assert total(otel, "modelpilot.promotions.blocked", model="tele") - before["modelpilot.promotions.blocked"] == 1
    assert total(otel, "modelpilot.rollbacks", model="tele") - before["modelpilot.rollbacks"] == 1

    # events carry the W3C traceparent of the command's span
    parents = bus.services.publisher.traceparents
    assert parents and all(p and p.startswith("00-") and len(p) == 55 for p in parents)
    span_ids = {f"{s.context.span_id:016x}" for s in spans}
    assert parents[-1].split("-")[2] in span_ids


def test_json_logs_carry_trace_ids(otel, capsys):
    logger = telemetry.get_logger("modelpilot.test")
    handler = logging.getLogger("modelpilot").handlers[0]
    records = []

    class Capture(logging.Handler):
        def emit(self, record):
            records.append(handler.format(record))

    cap = Capture()
    logger.addHandler(cap)
    logger.setLevel(logging.INFO)
    try:
        with telemetry.command_span("Test"):
            logger.info("inside %s", "span", extra={"modelpilot": {"model": "m"}})
    finally:
        logger.removeHandler(cap)
    entry = json.loads(records[-1])
    assert entry["message"] == "inside span" and entry["labels"]["model"] == "m"
    assert len(entry["trace"]["id"]) == 32 and len(entry["span"]["id"]) == 16


def test_continue_trace_parents_new_spans(otel):
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    otel.clear()
    with telemetry.continue_trace(parent), telemetry.command_span("Child"):
        pass
    (span,) = [s for s in otel.finished_spans() if s.name == "Child"]
    assert f"{span.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
