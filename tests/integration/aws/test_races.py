"""Ten operators promote and roll back one alias at once, through the bus and the DynamoDB registry on moto."""

from __future__ import annotations

import threading

import pytest

from modelpilot.bootstrap import bootstrap
from modelpilot.config import Settings
from modelpilot.domain.audit import verify_chain
from modelpilot.domain.commands import PromoteModel, RegisterModel, RollbackModel
from modelpilot.exceptions import ConcurrencyConflict
from modelpilot.service.queries import verify_audit
from tests.support.aws import create_stack, put_policy, upload_package


@pytest.fixture
def bus(request, monkeypatch, make_package):
    stack = create_stack(request)
    put_policy(stack, "version: 1\nenvironments: [prod]\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    settings = Settings(
        backend="aws",
        registry_table=stack.registry_table,
        model_bucket=stack.bucket,
        event_bus=stack.event_bus,
        topic_arn=stack.topic_arn,
        aws_endpoint_url=stack.endpoint,
        aws_region="us-east-1",
    )
    bus = bootstrap(settings)
    for n in range(1, 6):
        key = upload_package(stack, make_package("churn", auc=0.8 + n / 100), f"models/churn/v{n}")
        bus.handle(RegisterModel(package_uri=f"s3://{stack.bucket}/{key[:-16]}", actor="system:test"))
    return bus


def test_ten_threads_promote_and_roll_back_one_alias(bus):
    registry = bus.services.registry
    bus.handle(PromoteModel(model="churn", environment="prod", actor="user:seed", version=1))
    outcomes, conflicts, errors = [], [], []
    start = threading.Barrier(10)

    def worker(i):
        start.wait()
        command = (
            PromoteModel(model="churn", environment="prod", actor=f"user:op{i}", version=1 + i % 5, trigger=f"race-{i}")
            if i % 2 == 0
            else RollbackModel(
                model="churn", environment="prod", actor=f"user:op{i}", reason=f"race {i}", trigger=f"race-{i}"
            )
        )
        try:
            outcomes.append(bus.handle(command))
        except ConcurrencyConflict as exc:  # a loser after every CAS retry: retryable, changes nothing
            conflicts.append(exc)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(outcomes) + len(conflicts) == 10
    history = registry.alias_history("churn", "prod")
    alias = registry.get_alias("churn", "prod")
    assert [c.revision for c in history] == list(range(1, len(history) + 1))
    assert alias.revision == len(history) and alias.version == history[-1].to_version
    for before, after in zip(history, history[1:]):
        assert after.from_version == before.to_version
    changed = [o for o in outcomes if o.status in {"promoted", "rolled_back"}]
    assert len(history) == 1 + len(changed)
    moves = [r for r in registry.audit_records("churn") if r.action in {"promote", "rollback"}]
    assert len(moves) == len(history)  # one audit record per change, none for losers
    assert sorted(r.trigger for r in moves if r.trigger) == sorted(c.trigger for c in history if c.trigger)
    assert verify_chain("churn", registry.audit_records("churn")).ok
    assert all(v.ok for v in verify_audit(registry))
