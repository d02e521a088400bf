"""Races through Table Storage (Azurite): ten callers on one alias, ten deliveries of one event."""

from __future__ import annotations

import json
import threading

import pytest

from modelpilot.domain.audit import verify_chain
from modelpilot.domain.commands import PromoteModel, RegisterModel
from modelpilot.exceptions import ConcurrencyConflict
from tests.support.azure_functions import AzureApp, host_event, http_request, principal_header, user_function

THREADS = 10


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path)
    yield app
    app.close()


def run_together(work):
    barrier = threading.Barrier(THREADS)
    results, errors = [None] * THREADS, []

    def worker(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_ten_operators_on_one_alias_leave_a_consistent_history(app):
    for n in range(1, 5):
        app.upload_package(f"churn/v{n}", auc=0.8 + n / 100)
        app.bus.handle(RegisterModel(package_uri=f"az://{app.container}/churn/v{n}", actor="alice@contoso.com"))
    app.bus.handle(PromoteModel("churn", "dev", actor="alice@contoso.com", version=1))

    def work(i):
        who = {"X-MS-CLIENT-PRINCIPAL": principal_header(f"op{i}@contoso.com")}
        if i % 3 == 2:
            req = http_request(
                "POST",
                "models/churn/environments/dev/rollback",
                {"model": "churn", "env": "dev"},
                body={"reason": f"operator {i} rolls back"},
                headers=who,
            )
            response = user_function("api_rollback")(req)
        else:
            req = http_request(
                "POST",
                "models/churn/environments/dev/promote",
                {"model": "churn", "env": "dev"},
                body={"version": i % 4 + 1},
                headers=who,
            )
            response = user_function("api_promote")(req)
        return response.status_code, json.loads(response.get_body())

    results, errors = run_together(work)
    assert not errors
    assert all(status in (200, 503) for status, _ in results), results
    history = app.registry.alias_history("churn", "dev")
    assert [c.revision for c in history] == list(range(1, len(history) + 1))
    for before, after in zip(history, history[1:]):
        assert after.from_version == before.to_version
    moved = [body for status, body in results if body.get("status") in ("promoted", "rolled_back")]
    assert len(moved) == len(history) - 1 >= 1
    alias = app.registry.get_alias("churn", "dev")
    assert (alias.version, alias.revision) == (history[-1].to_version, history[-1].revision)
    records = app.registry.audit_records("churn")
    assert len([r for r in records if r.action in ("promote", "rollback")]) == len(history)
    assert verify_chain("churn", records).ok


def test_ten_simultaneous_deliveries_of_one_upload_register_once(app):
    etag = app.upload_package("churn/v1")
    event = app.blob_event("churn/v1", etag)

    def work(_i):
        try:
            user_function("model_upload")(host_event(event))
            return "done"
        except ConcurrencyConflict:  # another delivery holds the claim: the host retries this one later
            return "retry"

    results, errors = run_together(work)
    assert not errors
    assert "done" in results
    user_function("model_upload")(host_event(event))  # the retries arrive after the winner finished
    assert [v.version for v in app.registry.list_versions("churn")] == [1]
    assert [r.action for r in app.registry.audit_records("churn")] == ["register", "promote"]
    assert verify_chain("churn", app.registry.audit_records("churn")).ok
