"""The outbox on Azure (Azurite + a local Event Grid topic): Event Grid failing after the commit loses no event.

The function app's registry is Table Storage on Azurite; its publisher is the real Event Grid adapter
sending to the local topic endpoint (``tests/support/eventgrid.py``), which answers 503 to every request
during the first delivery of an upload. The registration and the promotion to dev commit, the publish
fails and the function raises so Event Grid redelivers. Before the outbox the redelivery was a no-op
and both events were lost; now it publishes each once, with the CloudEvents ``id`` ``<model>#<seq>``.

What this cannot show: the real Event Grid service's retry schedule, or a subscriber's de-duplication.
"""

from __future__ import annotations

import pytest

from modelpilot.adapters.azure.eventgrid import EventGridPublisher
from modelpilot.exceptions import TransientError
from modelpilot.service import outbox
from tests.support.azure_functions import AzureApp, host_event, user_function
from tests.support.eventgrid import EventGridTopic
from tests.support.outbound import _eventgrid_client


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path)
    yield app
    app.close()


@pytest.fixture
def topic():
    topic = EventGridTopic()
    yield topic
    topic.stop()


def test_event_grid_failing_during_an_upload_loses_neither_event_and_the_redelivery_sends_each_once(app, topic):
    app.bus.services.publisher = EventGridPublisher(_eventgrid_client(topic.endpoint, topic.key, retry_total=0))
    event = host_event(app.blob_event("churn/v1", app.upload_package("churn/v1")))
    topic.fail_with = 503
    with pytest.raises(TransientError):
        user_function("model_upload")(event)
    assert app.registry.get_alias("churn", "dev").version == 1  # committed in Table Storage
    assert topic.events == []  # not published
    topic.fail_with = None
    user_function("model_upload")(event)  # Event Grid's redelivery
    sent = [(e["type"], e["id"]) for e in topic.events]
    assert sent == [("ModelPilot.ModelRegistered", "churn#1"), ("ModelPilot.ModelPromoted", "churn#2")]
    assert app.registry.outbox_watermark("churn") == 2
    assert outbox.relay(app.bus.services) == {"churn": 0}  # and nothing twice
    assert len(topic.events) == 2
