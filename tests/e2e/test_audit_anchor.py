"""The anchored audit on the local backend, attacked the way someone with write access to the home would.

Each test edits ``registry.db`` (or a checkpoint file) with plain SQLite, outside
ModelPilot, then runs ``modelpilot audit verify`` as a user would: tampering must
end in exit 7 naming what is wrong. What these tests cannot prove: that an
attacker who can also read the checkpoint key (locally: ``<home>/secrets``) is
caught; the last test pins down that documented limit.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import replace

import pytest

from modelpilot.cli import main
from modelpilot.domain.audit import AuditRecord, compute_hash

POLICY = """
environments: [dev, staging, prod]
defaults:
  environments:
    prod:
      approvals: 1
"""


@pytest.fixture
def home(tmp_path, make_package, capsys):
    """A home where churn has 8 audit records: 2 registrations, 4 promotions, 1 approval, 1 rollback."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    for auc in (0.85, 0.86):
        assert run(home, "register", str(make_package(auc=auc)), "--promote", "--actor", "alice", capsys=capsys)[0] == 0
    assert run(home, "promote", "churn", "--env", "staging", "--actor", "alice", capsys=capsys)[0] == 0
    assert run(home, "approve", "churn", "2", "--env", "prod", "--actor", "bob", capsys=capsys)[0] == 0
    assert run(home, "promote", "churn", "--env", "prod", "--actor", "alice", capsys=capsys)[0] == 0
    assert run(home, "rollback", "churn", "--env", "dev", "--actor", "alice", "--reason", "bad", capsys=capsys)[0] == 0
    assert len(records(home)) == 8
    return home


def run(home, *args, capsys):
    code = main([*args, "--home", str(home)])
    out, err = capsys.readouterr()
    return code, out, err


def verify(home, capsys):
    code, out, err = run(home, "audit", "verify", "--json", capsys=capsys)
    return code, json.loads(out), err


def sql(home, *statements):
    conn = sqlite3.connect(home / "registry.db")
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


def records(home):
    conn = sqlite3.connect(home / "registry.db")
    conn.row_factory = sqlite3.Row
    rows = conn.execute("SELECT * FROM audit WHERE model='churn' ORDER BY seq").fetchall()
    conn.close()
    return [AuditRecord.from_dict({**dict(r), "evidence": json.loads(r["evidence"])}) for r in rows]


def recompute_from(home, seq, **changes):
    """Alter record ``seq`` and re-seal it and every later record, then move the head: a consistent rewrite."""
    chain = records(home)
    prev = chain[seq - 2].hash if seq > 1 else "0" * 64
    conn = sqlite3.connect(home / "registry.db")
    for record in chain[seq - 1 :]:
        fields = changes if record.seq == seq else {}
        body = replace(record, prev_hash=prev, hash="", **fields)
        sealed = replace(body, hash=compute_hash(body.body()))
        conn.execute(
            "UPDATE audit SET actor=?, reason=?, prev_hash=?, hash=? WHERE model='churn' AND seq=?",
            (sealed.actor, sealed.reason, sealed.prev_hash, sealed.hash, sealed.seq),
        )
        prev = sealed.hash
    conn.execute("UPDATE audit_heads SET hash=? WHERE model='churn'", (prev,))
    conn.commit()
    conn.close()


def problem(data):
    return " ".join(m["problem"] for m in data["models"] if not m["ok"]) + " ".join(data["problems"])


def test_an_untouched_home_verifies_and_checkpoints(home, capsys):
    code, data, _ = verify(home, capsys)
    assert code == 0 and data["ok"] is True and data["checkpoint"] is None
    code, out, _ = run(home, "audit", "checkpoint", "--json", capsys=capsys)
    assert code == 0
    written = json.loads(out)
    assert written["heads"]["churn"]["seq"] == 8 and len(written["signature"]) == 64
    assert (home / "secrets" / "modelpilot-audit-checkpoint-key").stat().st_mode & 0o077 == 0
    # more changes after the checkpoint are fine: the chain only grows past it
    assert (
        run(home, "rollback", "churn", "--env", "staging", "--actor", "alice", "--reason", "bad", capsys=capsys)[0] == 0
    )
    code, data, _ = verify(home, capsys)
    assert code == 0 and data["checkpoint"] == written["uri"]


def test_the_last_record_deleted_is_caught_by_the_head(home, capsys):
    sql(home, "DELETE FROM audit WHERE model='churn' AND seq=8")
    code, data, _ = verify(home, capsys)
    assert code == 7 and "records 8..8 were deleted" in problem(data)
    assert data["models"][0]["first_bad_seq"] == 8


def test_the_last_five_records_deleted_are_caught_by_the_head(home, capsys):
    sql(home, "DELETE FROM audit WHERE model='churn' AND seq>3")
    code, data, _ = verify(home, capsys)
    assert code == 7 and "records 4..8 were deleted" in problem(data)
    assert data["models"][0]["first_bad_seq"] == 4


def test_a_whole_chain_deleted_is_caught_by_the_head(home, capsys):
    sql(home, "DELETE FROM audit WHERE model='churn'")
    code, data, _ = verify(home, capsys)
    assert code == 7 and "whole chain is missing" in problem(data)


def test_a_whole_chain_and_its_head_deleted_is_caught_by_the_state(home, capsys):
    sql(home, "DELETE FROM audit WHERE model='churn'", "DELETE FROM audit_heads WHERE model='churn'")
    code, data, _ = verify(home, capsys)
    assert code == 7 and "no audit record registered them" in problem(data)


def test_everything_of_a_model_deleted_is_caught_by_the_checkpoint(home, capsys):
    assert run(home, "audit", "checkpoint", capsys=capsys)[0] == 0
    tables = ("audit", "audit_heads", "versions", "aliases", "alias_history", "approvals")
    sql(home, *(f"DELETE FROM {t} WHERE model='churn'" for t in tables))
    code, data, _ = verify(home, capsys)
    assert code == 7 and "whole chain was deleted" in problem(data)


def test_version_rows_deleted_are_caught_though_the_model_is_gone_from_the_state(home, capsys):
    sql(home, "DELETE FROM versions WHERE model='churn'")
    code, data, _ = verify(home, capsys)
    assert code == 7 and [m["model"] for m in data["models"]] == ["churn"]
    assert "version rows deleted: v1, v2" in problem(data)


def test_a_record_altered_and_the_chain_recomputed_is_caught_by_the_checkpoint(home, capsys):
    assert run(home, "audit", "checkpoint", capsys=capsys)[0] == 0
    recompute_from(home, 4, actor="mallory")
    code, data, _ = verify(home, capsys)
    assert code == 7 and "record 8 differs from the checkpoint" in problem(data)


def test_truncation_with_a_consistent_head_is_caught_by_the_checkpoint(home, capsys):
    assert run(home, "audit", "checkpoint", capsys=capsys)[0] == 0
    last = records(home)[4]
    sql(
        home,
        "DELETE FROM audit WHERE model='churn' AND seq>5",
        f"UPDATE audit_heads SET seq=5, hash='{last.hash}' WHERE model='churn'",
        # make the state agree with the shortened chain, so only the checkpoint can tell
        "DELETE FROM alias_history WHERE model='churn' AND environment='dev' AND revision=3",
        "UPDATE aliases SET version=2, revision=2 WHERE model='churn' AND environment='dev'",
        "DELETE FROM alias_history WHERE model='churn' AND environment='prod'",
        "DELETE FROM aliases WHERE model='churn' AND environment='prod'",
        "DELETE FROM approvals WHERE model='churn'",
    )
    code, data, _ = verify(home, capsys)
    assert code == 7 and "records after seq 5 were deleted" in problem(data)


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE aliases SET version=1 WHERE model='churn' AND environment='prod'", "alias prod is v1"),
        (
            "UPDATE alias_history SET actor='mallory' WHERE model='churn' AND environment='staging'",
            "alias staging history revision 1 differs",
        ),
        ("DELETE FROM alias_history WHERE model='churn' AND environment='dev' AND revision=3", "alias dev history"),
        ("DELETE FROM approvals WHERE model='churn'", "approval of v2 for prod by bob is in the audit but missing"),
        (
            "INSERT INTO approvals VALUES ('churn', 2, 'prod', 'carol', '2026-01-01T00:00:00+00:00', '')",
            "by carol is in the state but not in the audit",
        ),
        ("UPDATE versions SET manifest_digest='f' WHERE model='churn' AND version=1", "v1's manifest digest differs"),
    ],
)
def test_state_edited_outside_modelpilot_disagrees_with_the_audit(home, capsys, statement, expected):
    sql(home, statement)
    code, data, _ = verify(home, capsys)
    assert code == 7 and expected in problem(data)


def test_a_forged_checkpoint_is_named(home, capsys):
    code, out, _ = run(home, "audit", "checkpoint", "--json", capsys=capsys)
    path = json.loads(out)["uri"]
    with open(path) as handle:
        doc = json.load(handle)
    doc["heads"]["churn"]["seq"] = 3
    with open(path, "w") as handle:
        json.dump(doc, handle)
    code, data, _ = verify(home, capsys)
    assert code == 7 and "not signed by the audit key" in problem(data)


def test_checkpoint_refuses_to_sign_a_broken_audit(home, capsys):
    sql(home, "DELETE FROM audit WHERE model='churn' AND seq=8")
    code, _, err = run(home, "audit", "checkpoint", capsys=capsys)
    assert code == 7 and "no checkpoint written" in err
    assert not (home / "data" / "audit-checkpoints").exists()


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("registry.db", "garbage"),
        ("registry.db", "truncated"),
        ("idempotency.db", "garbage"),
    ],
)
def test_a_corrupt_database_exits_7_with_one_line(home, name, damage):
    db = home / name
    if db.exists():
        sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = db.read_bytes() if db.exists() else b""
    db.write_bytes(b"this is not a database" * 300 if damage == "garbage" else data[: len(data) // 3])
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", "audit", "verify", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 7, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert f"database {name} is corrupt" in done.stderr


def test_limit_a_rewrite_after_the_last_checkpoint_with_state_to_match_is_not_detectable(home, capsys):
    """Documented limit: records newer than the last checkpoint can be rewritten consistently (head included)."""
    assert run(home, "audit", "checkpoint", capsys=capsys)[0] == 0
    assert (
        run(home, "rollback", "churn", "--env", "staging", "--actor", "alice", "--reason", "bad", capsys=capsys)[0] == 0
    )
    recompute_from(home, 9, reason="nothing to see")
    code, data, _ = verify(home, capsys)
    assert code == 0 and data["ok"] is True


def test_a_database_from_before_heads_is_anchored_once_at_its_current_end(home, capsys):
    sql(home, "DROP TABLE audit_heads", "PRAGMA user_version=0")  # what a file written by an older release holds
    code, data, _ = verify(home, capsys)
    assert code == 0 and data["ok"] is True
    conn = sqlite3.connect(home / "registry.db")
    assert conn.execute("SELECT seq FROM audit_heads WHERE model='churn'").fetchone() == (8,)
    assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    conn.close()


def test_a_heads_table_dropped_later_is_not_rebuilt_from_a_cut_chain(home, capsys):
    sql(home, "DELETE FROM audit WHERE model='churn' AND seq=8", "DROP TABLE audit_heads")
    code, data, _ = verify(home, capsys)
    assert code == 7 and "chain head is missing" in problem(data)


def test_checkpoint_adopts_a_missing_head_only_when_asked(home, capsys):
    sql(home, "DELETE FROM audit_heads WHERE model='churn'")
    code, _, err = run(home, "audit", "checkpoint", capsys=capsys)
    assert code == 7 and "no checkpoint written" in err
    code, out, _ = run(home, "audit", "checkpoint", "--adopt-missing-heads", capsys=capsys)
    assert code == 0 and "adopted the head of churn at seq 8" in out
    assert verify(home, capsys)[0] == 0


def test_an_approver_written_in_another_case_verifies(tmp_path, make_package, capsys):
    """Approvals are stored under the canonical identity and audited as given: verify compares them canonically."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "modelpilot.yaml").write_text(POLICY)
    assert run(home, "register", str(make_package()), "--actor", "alice", capsys=capsys)[0] == 0
    assert run(home, "approve", "churn", "1", "--env", "prod", "--actor", " Bob@Example.com", capsys=capsys)[0] == 0
    code, data, _ = verify(home, capsys)
    assert code == 0 and data["ok"] is True, problem(data)
    sql(home, "DELETE FROM approvals")  # and a deleted approval is still named
    code, data, _ = verify(home, capsys)
    assert code != 0 and "approval of v1 for prod by bob@example.com" in problem(data)


def test_audited_denials_leave_a_chain_that_verifies(tmp_path, make_package, capsys):
    """A denial is a record of the chain that changes no state: verify must accept it, and the head moves with it."""
    home = tmp_path / "home"
    home.mkdir()
    roles = "roles:\n  - role: admin\n    members: [alice]\n"
    (home / "modelpilot.yaml").write_text(POLICY + roles)
    assert run(home, "register", str(make_package()), "--actor", "alice", capsys=capsys)[0] == 0
    code, _, err = run(home, "promote", "churn", "--env", "dev", "--actor", "mallory", capsys=capsys)
    assert code == 5, err
    assert [r.action for r in records(home)][-1] == "deny"
    code, data, _ = verify(home, capsys)
    assert code == 0 and data["ok"] is True, problem(data)
