"""The drift chain on Azure: upload → register → reference profile in Blob → timer → report → alert → gate.

Storage is Azurite; the drift engine and the promotion gates are the real ones.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from modelpilot.domain.commands import PromoteModel
from modelpilot.package.builder import write_package
from modelpilot.testing import FakeClock
from tests.support.azure_functions import AzureApp, host_event, host_timer, user_function

POLICY = """\
environments: [dev, staging, prod]
defaults:
  environments:
    prod:
      require_no_drift_alert: true
models:
  churn:
    drift:
      environments: [staging]
      window: 6h
"""
FEATURES = [
    {"name": "tenure", "type": "numeric", "minimum": 0},
    {"name": "charges", "type": "numeric"},
    {"name": "plan", "type": "categorical", "allowed_values": ["basic", "pro"]},
]
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEADER = "tenure,charges,plan\n"


def rows(n, rng, shift=0.0):
    tenure, charges = rng.gamma(2.0, 12.0, n), rng.normal(70 + shift, 20, n)
    plan = rng.choice(["basic", "pro"], n, p=[0.6, 0.4])
    return "".join(f"{t:.3f},{c:.3f},{p}\n" for t, c, p in zip(tenure, charges, plan, strict=True))


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path, policy_text=POLICY)
    app.bus.services.clock = FakeClock(T0)
    yield app
    app.close()


def test_drift_on_azure_blob_captures_alerts_and_blocks_prod(app, tmp_path):
    rng = np.random.default_rng(7)
    root = tmp_path / "pkg"
    write_package(
        root,
        files={"model.bin": b"weights", "reference.csv": (HEADER + rows(2000, rng)).encode()},
        artifacts=["model.bin"],
        name="churn",
        framework="test",
        metrics={"auc": 0.8},
        features=FEATURES,
        reference_data_uri="reference.csv",
    )
    etag = app.upload_folder(root, "churn/v1")
    user_function("model_upload")(host_event(app.blob_event("churn/v1", etag)))
    blob = app.blob.get_container_client(app.container)
    profile = json.loads(blob.download_blob("monitoring/profiles/churn/v1/reference-profile.json").readall())
    assert profile["rows"] == 2000
    app.bus.handle(PromoteModel("churn", "staging", actor="alice@contoso.com", version=1))

    for back in range(1, 7):
        hour = T0 - timedelta(hours=back)
        blob.upload_blob(
            f"monitoring/captures/churn/staging/{hour:%Y/%m/%d/%H}/part-0.csv", HEADER + rows(500, rng, shift=30.0)
        )
    user_function("drift_batch")(host_timer())
    user_function("drift_batch")(host_timer())  # the same occurrence again: one report, one event
    drift_events = [e for e in app.publisher.events if e.name == "DriftDetected"]
    assert len(drift_events) == 1
    event = drift_events[0]
    assert (event.model, event.environment, event.version) == ("churn", "staging", 1)
    assert "charges" in event.drifted_features
    assert event.report_uri.startswith(f"az://{app.container}/monitoring/reports/churn/staging/")
    report = json.loads(app.bus.services.artifacts.read_bytes(event.report_uri))
    assert report["current"]["rows"] == 3000
    status = app.registry.get_monitor_status("churn", "staging", "drift")
    assert status.state == "alert" and status.version == 1
    blocked = app.bus.handle(PromoteModel("churn", "prod", actor="alice@contoso.com", version=1))
    assert blocked.status == "blocked"
    assert any(sent[0].endswith("DriftDetected") for sent in app.notifier.sent)
