"""On Azure (Azurite): uploads never move dev back, alert keys hold the condition, the policy is re-read by ETag.

What these prove, through the function app as the Functions host calls it and Table/Blob Storage on Azurite:
an identical re-upload (a copy of the package at a new path, a replayed event with a new ETag) promotes nothing;
an automatic promotion that lands after a newer one (two workers: v1's upload decides after v2's whole upload)
leaves the newer version in dev, because the check runs on the alias read inside the Table compare-and-set;
a ``Resolved`` alert never masks a ``Fired`` one with the same time; the Blob adapter's conditional read
answers "unchanged" for the ETag it was given. What they cannot prove: interleavings other than the one forced
here, and Azure's own Blob service (Azurite stands in for it).
"""

from __future__ import annotations

import json

import pytest

from modelpilot.domain.audit import verify_chain
from modelpilot.policy.loader import PolicyLoader
from tests.support.azure_functions import AzureApp, host_event, user_function


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path)
    yield app
    app.close()


def upload(app, prefix, etag):
    return user_function("model_upload")(host_event(app.blob_event(prefix, etag)))


def dev(app):
    return app.registry.get_alias("churn", "dev").version


def test_a_copy_of_an_old_package_at_a_new_path_does_not_move_dev_back(app, tmp_path):
    upload(app, "churn/v1", app.upload_package("churn/v1", auc=0.8))
    upload(app, "churn/v2", app.upload_package("churn/v2", auc=0.9))
    assert dev(app) == 2
    copy_etag = app.upload_folder(tmp_path / "churn_v1", "churn/v1-copy")  # the same manifest at another path
    upload(app, "churn/v1-copy", copy_etag)
    upload(app, "churn/v1", "0x8DDREPLAYED")  # v1's event replayed with another ETag (after the record expired)
    assert dev(app) == 2
    assert [c.to_version for c in app.registry.alias_history("churn", "dev")] == [1, 2]
    assert app.publisher.names().count("ModelPromoted") == 2
    assert verify_chain("churn", app.registry.audit_records("churn")).ok


def test_an_auto_promotion_landing_after_a_newer_one_does_not_move_dev_back(app, monkeypatch):
    first = app.upload_package("churn/v1", auc=0.8)
    second = app.upload_package("churn/v2", auc=0.9)
    registry = app.registry
    register = registry.register_version

    def interleaved(**kwargs):
        result = register(**kwargs)
        if result[0].version == 1:  # another worker handles v2's upload from start to end right now
            upload(app, "churn/v2", second)
            assert dev(app) == 2
        return result

    monkeypatch.setattr(registry, "register_version", interleaved)
    upload(app, "churn/v1", first)
    assert dev(app) == 2  # before: v1's promotion landed last and moved dev back to v1
    history = registry.alias_history("churn", "dev")
    assert [(c.from_version, c.to_version) for c in history] == [(None, 2)]
    assert verify_chain("churn", registry.audit_records("churn")).ok


def alert(condition, when="2026-11-26T10:00:00Z"):
    essentials = {
        "alertId": "/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/a1",
        "alertRule": "churn-prod-feature-drift",
        "monitorCondition": condition,
        "firedDateTime": when,
        "resolvedDateTime": when if condition == "Resolved" else None,
    }
    properties = {"modelpilot:model": "churn", "modelpilot:environment": "prod"}
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {"essentials": essentials, "customProperties": properties},
    }


def test_a_resolved_alert_never_masks_a_fired_one_with_the_same_time():
    from modelpilot.entrypoints.azure.alerts import alert_command

    resolved, fired = alert_command(json.dumps(alert("Resolved"))), alert_command(json.dumps(alert("Fired")))
    assert resolved is not None and fired is not None
    assert resolved.key != fired.key and "#Fired@" in fired.key
    assert (resolved.command.state, fired.command.state) == ("OK", "ALARM")


def test_the_blob_store_answers_a_conditional_read_and_the_loader_follows_the_blob(app):
    store = app.bus.services.artifacts
    uri = f"az://{app.container}/modelpilot.yaml"
    container = app.blob.get_container_client(app.container)
    container.upload_blob("modelpilot.yaml", b"environments: [dev, prod]\n")
    data, etag = store.read_if_changed(uri, None)
    assert data == b"environments: [dev, prod]\n" and etag
    assert store.read_if_changed(uri, etag) == (None, etag)  # 304 Not Modified: nothing transferred
    loader = PolicyLoader(store, conventional=uri, ttl_seconds=0)
    assert loader().environments == ["dev", "prod"]
    loader()
    assert loader.parses == 1
    container.upload_blob("modelpilot.yaml", b"environments: [dev, staging, prod]\n", overwrite=True)
    assert loader().environments == ["dev", "staging", "prod"] and loader.parses == 2
    container.upload_blob("modelpilot.yaml", b"", overwrite=True)
    from modelpilot.exceptions import PolicyError

    with pytest.raises(PolicyError, match="empty"):
        loader()


def test_the_azure_api_promotes_conditionally_and_once_per_idempotency_key(app):
    from tests.support.azure_functions import http_request, principal_header

    upload(app, "churn/v1", app.upload_package("churn/v1", auc=0.8))
    upload(app, "churn/v2", app.upload_package("churn/v2", auc=0.9))
    who = {"X-MS-CLIENT-PRINCIPAL": principal_header("alice@contoso.com")}

    def promote(body, headers):
        req = http_request(
            "POST",
            "models/churn/environments/staging/promote",
            {"model": "churn", "env": "staging"},
            body=body,
            headers=headers,
        )
        response = user_function("api_promote")(req)
        return response.status_code, json.loads(response.get_body())

    assert promote({"version": 2, "from_version": 1}, who)[1]["status"] == "noop"  # staging runs nothing yet
    keyed = {**who, "Idempotency-Key": "release-2"}
    assert [promote({"version": 2}, keyed)[1]["status"] for _ in range(2)] == ["promoted", "unchanged"]
    [record] = [r for r in app.registry.audit_records("churn") if r.environment == "staging"]
    assert record.trigger == "api:release-2"


def test_four_workers_replaying_shuffled_uploads_with_duplicates_never_move_dev_back(app):
    """Twelve uploads delivered twice each, shuffled, by four workers at once (Event Grid fans out like this):
    dev's history only ever moves forward, and it ends on the newest version."""
    import random
    import threading

    from modelpilot.exceptions import ConcurrencyConflict

    etags = {f"churn/v{n}": app.upload_package(f"churn/v{n}", auc=0.8 + n / 1000) for n in range(1, 13)}
    deliveries = [prefix for prefix in etags for _ in range(2)]
    random.Random(12).shuffle(deliveries)
    lock, errors = threading.Lock(), []

    def worker():
        while True:
            with lock:
                if not deliveries:
                    return
                prefix = deliveries.pop()
            try:
                upload(app, prefix, etags[prefix])
            except ConcurrencyConflict:  # the same upload is in flight on another worker: the host retries it
                with lock:
                    deliveries.insert(0, prefix)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    history = app.registry.alias_history("churn", "dev")
    moves = [c.to_version for c in history]
    assert moves == sorted(moves) and len(set(moves)) == len(moves), moves  # never backwards, never twice
    assert [c.revision for c in history] == list(range(1, len(history) + 1))
    assert moves[-1] == max(v.version for v in app.registry.list_versions("churn")) == 12
    assert verify_chain("churn", app.registry.audit_records("churn")).ok
