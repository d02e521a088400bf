"""Event Grid, Key Vault and the wiring (Azure Monitor: ``test_azure_monitor.py``).

Event Grid is exercised over real HTTP against a listener on 127.0.0.1; Key Vault
(no emulator) through the SDK's transport with recorded response shapes of its
REST API; the wiring against Azurite.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from modelpilot.config import Settings
from modelpilot.domain.events import ModelPromoted, ModelRolledBack
from modelpilot.exceptions import DataError, InvalidInput, NotFound, TransientError
from tests.support import azure as az
from tests.support.azure_transport import StaticCredential, canned_transport


# -- Event Grid --------------------------------------------------------------------------
@pytest.fixture
def topic():
    """A local Event Grid topic endpoint that records what it receives."""
    received = []

    class Topic(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Topic)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/events", received
    server.shutdown()
    server.server_close()


def test_domain_events_are_published_as_cloudevents_with_traceparent(topic):
    from azure.core.credentials import AzureKeyCredential
    from azure.eventgrid import EventGridPublisherClient

    from modelpilot.adapters.azure.eventgrid import EventGridNotifier, EventGridPublisher

    endpoint, received = topic
    client = EventGridPublisherClient(endpoint, AzureKeyCredential("topic-key"))
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    events = [
        ModelPromoted("churn", "prod", 3, 2, 7, "alice", "d" * 64),
        ModelRolledBack("churn", "prod", 3, 2, 8, "system:slo", "burn", "alert-1", {"burn_rate": 14.4}),
    ]
    EventGridPublisher(client, source="/subscriptions/x/sites/modelpilot").publish(events, traceparent=traceparent)
    EventGridNotifier(client).notify("[modelpilot] ModelRolledBack", "churn prod rolled back")
    (_, headers, batch), (_, _, notes) = received
    assert headers["Content-Type"].startswith("application/cloudevents-batch+json")
    assert headers["aeg-sas-key"] == "topic-key"
    assert [e["type"] for e in batch] == ["ModelPilot.ModelPromoted", "ModelPilot.ModelRolledBack"]
    first = batch[0]
    assert first["specversion"] == "1.0" and first["source"] == "/subscriptions/x/sites/modelpilot"
    assert first["subject"] == "models/churn/environments/prod"
    assert first["traceparent"] == traceparent
    assert first["data"]["version"] == 3 and first["data"]["event"] == "ModelPromoted"
    assert batch[1]["data"]["evidence"] == {"burn_rate": 14.4}
    assert len({e["id"] for e in batch}) == 2
    assert notes[0]["type"] == "ModelPilot.Notification"
    assert notes[0]["data"]["message"] == "churn prod rolled back"


def test_unreachable_topic_is_a_transient_error():
    from azure.core.credentials import AzureKeyCredential
    from azure.eventgrid import EventGridPublisherClient

    from modelpilot.adapters.azure.eventgrid import EventGridPublisher

    client = EventGridPublisherClient("http://127.0.0.1:9/api/events", AzureKeyCredential("k"), retry_total=0)
    with pytest.raises(TransientError):
        EventGridPublisher(client).publish([ModelPromoted("churn", "dev", 1, None, 1, "a", "d" * 64)])


# -- Key Vault ---------------------------------------------------------------------------
VAULT = "https://mp-kv-test.vault.azure.net"
CHALLENGE = {
    "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/'
    '00000000-0000-0000-0000-000000000000", resource="https://vault.azure.net"'
}


def vault_handler(request):
    if "Authorization" not in request.headers:
        return (
            401,
            {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer token."}},
            CHALLENGE,
        )
    name = urlparse(request.url).path.split("/")[2]
    if name == "webhook-key":
        return (
            200,
            {
                "value": "s3cret-value",
                "id": f"{VAULT}/secrets/webhook-key/5c2b4f0e8a1d4e6f",
                "attributes": {
                    "enabled": True,
                    "created": 1763000000,
                    "updated": 1763000000,
                    "recoveryLevel": "Recoverable",
                },
                "tags": {},
            },
            {},
        )
    return (
        404,
        {
            "error": {
                "code": "SecretNotFound",
                "message": f"A secret with (name/id) {name} was not found in this key vault.",
            }
        },
        {},
    )


def test_key_vault_secrets_through_the_sdk():
    from azure.keyvault.secrets import SecretClient

    from modelpilot.adapters.azure.keyvault import KeyVaultSecrets

    transport, adapter = canned_transport(vault_handler)
    credential = StaticCredential()
    secrets = KeyVaultSecrets(SecretClient(VAULT, credential, transport=transport, verify_challenge_resource=True))
    assert secrets.get_secret("webhook-key") == "s3cret-value"
    assert secrets.get_secret("webhook-key") == "s3cret-value"  # cached: no second call
    assert sum("webhook-key" in r.url for r in adapter.seen) == 2  # the challenge round trip, then the read
    assert ("https://vault.azure.net/.default",) in credential.scopes
    assert adapter.seen[-1].headers["Authorization"] == "Bearer test-token"
    with pytest.raises(NotFound, match="nope"):
        secrets.get_secret("nope")


# -- wiring ------------------------------------------------------------------------------
def test_wiring_from_a_named_connection_setting(request, monkeypatch):
    from modelpilot.adapters.azure.blob import BlobArtifactStore
    from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource
    from modelpilot.adapters.azure.registry import TableRegistry
    from modelpilot.adapters.log import LogPublisher
    from modelpilot.bootstrap import build_services

    name = az.connection_env(request, monkeypatch, "MODELPILOT_STORAGE")
    container = az.new_container(request)
    az.blob_service(request).get_blob_client(container, "modelpilot.yaml").upload_blob(b"environments: [dev, prod]\n")
    svc = build_services(Settings(backend="azure", azure_storage_connection_setting=name, azure_container=container))
    assert isinstance(svc.registry, TableRegistry) and isinstance(svc.artifacts, BlobArtifactStore)
    assert isinstance(svc.publisher, LogPublisher)
    assert isinstance(svc.metrics_sources["azure_monitor"], AzureMonitorMetricsSource)
    assert svc.policy.environments == ["dev", "prod"]  # read from az://<container>/modelpilot.yaml
    assert svc.data_root == f"az://{container}/monitoring"


def test_wiring_refuses_missing_settings(monkeypatch):
    from modelpilot.bootstrap import build_services

    monkeypatch.delenv("MODELPILOT_UNSET_SETTING", raising=False)
    with pytest.raises(InvalidInput, match="MODELPILOT_UNSET_SETTING"):
        build_services(Settings(backend="azure", azure_storage_connection_setting="MODELPILOT_UNSET_SETTING"))
    with pytest.raises(InvalidInput, match="ACCOUNT_URL"):
        build_services(Settings(backend="azure"), credential=StaticCredential())


def test_wiring_with_account_url_and_managed_identity_builds_clients_without_io():
    from modelpilot.adapters.azure.keyvault import KeyVaultSecrets
    from modelpilot.bootstrap import build_services

    svc = build_services(
        Settings(
            backend="azure",
            azure_storage_account_url="https://mpsa.blob.core.windows.net",
            azure_keyvault_url=VAULT,
            azure_eventgrid_endpoint="https://topic.westeurope-1.eventgrid.azure.net/api/events",
            policy=None,
        ),
        credential=StaticCredential(),
    )
    assert svc.registry.table.url.startswith("https://mpsa.table.core.windows.net")
    assert isinstance(svc.secrets, KeyVaultSecrets)
    assert type(svc.publisher).__name__ == "EventGridPublisher"


def test_blob_uris_are_checked():
    from modelpilot.adapters.azure.blob import split_uri

    assert split_uri("az://models/churn/v1/modelpilot.json") == ("models", "churn/v1/modelpilot.json")
    for bad in ("s3://bucket/key", "az:///no-container"):
        with pytest.raises(DataError):
            split_uri(bad)
