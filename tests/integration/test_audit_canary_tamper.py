"""``audit verify`` replays each environment's canary on the local backend: an edited canary row is reported.

The canary runs through the SQLite registry as the service writes it; then its row is
edited directly with sqlite3 (as someone with write access to the file would), and the
verification names the field that disagrees with the last canary record of the audit.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from modelpilot.domain.commands import ChangeCanary, RollbackModel
from modelpilot.service.audit import verify_audit
from tests.integration.test_canary_local import TICK, home, new_bus, serve  # noqa: F401  (the fixture)

ENVS = ["dev", "prod"]


def _verify(registry):
    report = verify_audit(registry, environments=ENVS)
    return report.ok, "; ".join(v.problem for v in report.verdicts if not v.ok)


def _sql(registry, statement, *args):
    conn = sqlite3.connect(registry.path)
    conn.execute(statement, args)
    conn.commit()
    conn.close()


def _edit_doc(registry, env, **changes):
    row = (
        sqlite3.connect(registry.path)
        .execute("SELECT doc FROM canaries WHERE model='churn' AND environment=?", (env,))
        .fetchone()
    )
    doc = {**json.loads(row[0]), **changes}
    _sql(registry, "UPDATE canaries SET doc=? WHERE model='churn' AND environment=?", json.dumps(doc), env)


@pytest.fixture
def running(home):  # noqa: F811
    """churn v2's canary in prod, advanced once to 50 % (revision 2): the audit verifies."""
    home, clock = home
    bus = new_bus(home, clock)
    serve(bus, clock, 10)
    assert bus.handle(TICK).status == "checked"
    registry = bus.services.registry
    assert (registry.get_canary("churn", "prod").weight, registry.get_canary("churn", "prod").revision) == (50, 2)
    assert _verify(registry) == (True, "")
    return bus


def test_every_ending_of_a_canary_verifies(running):
    bus = running
    bus.handle(ChangeCanary(model="churn", environment="prod", action="pause", actor="alice"))
    assert _verify(bus.services.registry) == (True, "")
    bus.handle(ChangeCanary(model="churn", environment="prod", action="promote", actor="alice"))
    assert bus.services.registry.get_canary("churn", "prod").state == "promoted"
    assert _verify(bus.services.registry) == (True, "")
    bus.handle(RollbackModel(model="churn", environment="prod", actor="alice", reason="back"))
    assert _verify(bus.services.registry) == (True, "")


def test_a_weight_edited_in_the_row_is_reported(running):
    registry = running.services.registry
    _edit_doc(registry, "prod", weight=90)
    ok, problem = _verify(registry)
    assert not ok and "canary prod has weight 90 in the state but the audit replays to 50 (canary edited)" in problem


def test_a_state_and_step_edited_in_the_row_are_reported(running):
    registry = running.services.registry
    _edit_doc(registry, "prod", state="paused", step=0, revision=2)
    ok, problem = _verify(registry)
    assert not ok
    assert "canary prod has state 'paused' in the state but the audit replays to 'running'" in problem
    assert "canary prod has step 0" in problem


def test_steps_edited_in_the_row_are_reported(running):
    registry = running.services.registry
    _edit_doc(registry, "prod", steps=[10, 90, 100])
    ok, problem = _verify(registry)
    assert not ok and "canary prod steps [10, 90, 100] differ from [10, 50, 100] recorded at its start" in problem


def test_the_state_column_alone_edited_is_reported(running):
    registry = running.services.registry
    _sql(registry, "UPDATE canaries SET state='aborted' WHERE model='churn' AND environment='prod'")
    assert registry.list_canaries(active_only=True) == []  # the tick would no longer see it
    ok, problem = _verify(registry)
    assert not ok and "canary prod is running but the store does not list it as active" in problem


def test_a_deleted_canary_row_is_reported(running):
    registry = running.services.registry
    _sql(registry, "DELETE FROM canaries WHERE model='churn' AND environment='prod'")
    ok, problem = _verify(registry)
    assert not ok and "canary prod was saved in audit record" in problem and "missing from the state" in problem


def test_a_canary_row_with_no_audit_record_is_reported(running):
    registry = running.services.registry
    row = sqlite3.connect(registry.path).execute("SELECT * FROM canaries WHERE model='churn'").fetchone()
    doc = {**json.loads(row[4]), "environment": "dev"}
    _sql(registry, "INSERT INTO canaries VALUES ('churn', 'dev', ?, ?, ?)", row[2], row[3], json.dumps(doc))
    ok, problem = _verify(registry)
    assert not ok and "canary dev is in the state but no audit record saved it" in problem
