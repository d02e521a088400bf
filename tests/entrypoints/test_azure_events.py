"""Azure payloads → commands: real-shaped events through the host's converters and our parsers."""

from __future__ import annotations

import base64
import json

import pytest

from modelpilot.domain.commands import HandleAlarm, RegisterModel
from modelpilot.entrypoints.azure.envelope import parse_envelope
from modelpilot.entrypoints.azure.events import alarm_command, model_registered_command, upload_command
from modelpilot.entrypoints.azure.http import KEY_ACTOR, actor_from_headers, approve_command, rollback_command
from modelpilot.entrypoints.azure.runtime import event_payload
from modelpilot.entrypoints.azure.timers import timer_command
from modelpilot.exceptions import InvalidEvent, InvalidInput
from tests.support.azure_functions import entra_id, host_event, load_event, principal_header


def envelope_of(name):
    """Fixture file → the object the host hands the function → our envelope."""
    return parse_envelope(event_payload(host_event(load_event(name))))


def test_published_samples_parse_in_both_schemas():
    grid = envelope_of("eventgrid_blob_created.json")
    cloud = envelope_of("eventgrid_blob_created_cloudevents.json")
    assert (grid.schema, cloud.schema) == ("eventgrid", "cloudevents")
    assert grid.type == cloud.type == "Microsoft.Storage.BlobCreated"
    assert grid.id == cloud.id == "831e1650-001e-001b-66ab-eeb76e069631"
    assert grid.data == cloud.data
    assert grid.subject == "/blobServices/default/containers/test-container/blobs/new-file.txt"


def test_blob_that_is_not_a_manifest_is_ignored():
    assert upload_command(envelope_of("eventgrid_blob_created.json"), container="test-container") is None
    assert upload_command(envelope_of("eventgrid_blob_created.json"), container="models") is None


@pytest.mark.parametrize(
    "name", ["eventgrid_blob_created_manifest.json", "eventgrid_blob_created_manifest_cloudevents.json"]
)
def test_manifest_upload_registers_with_a_key_from_blob_and_etag(name):
    done = upload_command(envelope_of(name), container="models")
    assert isinstance(done.command, RegisterModel)
    assert done.command.package_uri == "az://models/churn/v1/modelpilot.json"
    assert done.command.auto_promote and done.command.actor == "system:eventgrid"
    assert done.key == 'blob:models/churn/v1/modelpilot.json@"0x8DD0A1B2C3D4E5F"'
    assert done.command.trigger == done.key


def test_cloudevents_traceparent_extension_is_kept():
    env = envelope_of("eventgrid_blob_created_manifest_cloudevents.json")
    assert env.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_manual_run_input_string_is_the_same_event():
    raw = load_event("eventgrid_blob_created_manifest.json")
    manual = {"input": json.dumps(raw[0])}
    assert parse_envelope(manual) == parse_envelope(raw)


def test_path_style_url_of_azurite_is_understood():
    raw = load_event("eventgrid_blob_created_manifest.json")[0]
    raw["subject"] = ""
    raw["data"]["url"] = "http://127.0.0.1:10000/devstoreaccount1/models/churn/v2/modelpilot.json"
    done = upload_command(parse_envelope(raw), container="models")
    assert done.command.package_uri == "az://models/churn/v2/modelpilot.json"


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ("not json", "not JSON"),
        ([{"id": "1"}, {"id": "2"}], "array of 2"),
        ({"id": "x", "subject": "s", "data": {}}, "eventType"),
        ({"id": "x", "eventType": "Microsoft.Storage.BlobCreated", "subject": "s"}, "no data object"),
        ({"id": "", "type": "t", "source": "s", "specversion": "1.0", "data": {}}, "id"),
        (42, "JSON object"),
    ],
)
def test_malformed_deliveries_raise_invalid_event(payload, fragment):
    with pytest.raises(InvalidEvent, match=fragment):
        parse_envelope(payload)


def test_blob_created_without_url_is_invalid():
    raw = load_event("eventgrid_blob_created_manifest.json")[0]
    del raw["data"]["url"]
    with pytest.raises(InvalidEvent, match="url"):
        upload_command(parse_envelope(raw), container="models")


def test_wrong_event_type_for_the_function_is_invalid():
    with pytest.raises(InvalidEvent, match="ModelRegistered"):
        model_registered_command(envelope_of("eventgrid_blob_created_manifest.json"))


def test_azureml_model_registered_with_package_tag():
    done = model_registered_command(envelope_of("azureml_model_registered_modelpilot.json"))
    assert done.command == RegisterModel(
        package_uri="az://models/churn/v1",
        actor="system:azureml",
        trigger="azureml:mlw-modelpilot/churn:7",
        source="azureml",
        external_id="azureml:mlw-modelpilot/churn:7",
    )
    assert done.key == "azureml:mlw-modelpilot/churn:7"


def test_published_azureml_sample_without_package_tag_is_rejected_with_advice():
    with pytest.raises(InvalidEvent, match="modelpilot_package"):
        model_registered_command(envelope_of("azureml_model_registered.json"))


def test_monitor_breach_becomes_an_alarm():
    done = alarm_command(envelope_of("azureml_run_completed_monitor_breach.json"))
    cmd = done.command
    assert isinstance(cmd, HandleAlarm)
    expected = ("churn", "prod", "churn-prod-feature-drift", "ALARM")
    assert (cmd.model, cmd.environment, cmd.alarm_name, cmd.state) == expected
    assert done.key == cmd.trigger == "azureml-run:churn_prod_monitor_20261120T1100"


def test_monitor_run_within_threshold_is_an_ok_alarm():
    raw = load_event("azureml_run_completed_monitor_breach.json")[0]
    raw["data"]["runProperties"]["modelpilot_threshold_breached"] = "false"
    assert alarm_command(parse_envelope(raw)).command.state == "OK"


def test_published_drift_sample_names_no_model_and_is_rejected():
    with pytest.raises(InvalidEvent, match="<model>--<environment>"):
        alarm_command(envelope_of("azureml_dataset_drift_detected.json"))


def test_drift_monitor_named_model_and_environment_alarms():
    raw = load_event("azureml_dataset_drift_detected.json")[0]
    raw["data"]["DataDriftName"] = "churn--prod"
    cmd = alarm_command(parse_envelope(raw)).command
    assert (cmd.model, cmd.environment, cmd.state) == ("churn", "prod", "ALARM")
    assert cmd.evidence["drift_coefficient"] == pytest.approx(0.835, abs=1e-3)


def test_untagged_run_is_not_a_monitor_run():
    raw = load_event("azureml_run_completed_monitor_breach.json")[0]
    raw["data"]["runTags"] = {}
    with pytest.raises(InvalidEvent, match="modelpilot_model"):
        alarm_command(parse_envelope(raw))


def test_actor_from_app_service_principal():
    principal = {"X-MS-CLIENT-PRINCIPAL": principal_header("bob@contoso.com")}
    assert actor_from_headers(principal) == entra_id("bob@contoso.com")
    # the name header alone proves nothing App Service did not also put in the principal: not an identity
    assert actor_from_headers({"x-ms-client-principal-name": "carol@contoso.com"}) == KEY_ACTOR
    assert actor_from_headers({}) == KEY_ACTOR
    assert actor_from_headers(principal, trusted=False) == KEY_ACTOR  # no App Service auth: a client could forge it
    with pytest.raises(InvalidInput):
        actor_from_headers({"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"not json").decode()})


def test_http_bodies_are_validated():
    cmd = approve_command("churn", "3", b'{"environment": "prod", "comment": "ok"}', "bob", "k1")
    assert (cmd.version, cmd.environment, cmd.approver, cmd.trigger) == (3, "prod", "bob", "k1")
    with pytest.raises(InvalidInput, match="environment"):
        approve_command("churn", "3", b"{}", "bob")
    with pytest.raises(InvalidInput, match="version"):
        approve_command("churn", "three", b'{"environment": "prod"}', "bob")
    with pytest.raises(InvalidInput, match="reason"):
        rollback_command("churn", "prod", b"{}", "bob")
    with pytest.raises(InvalidInput, match="not JSON"):
        rollback_command("churn", "prod", b"{nope", "bob")
    with pytest.raises(InvalidInput, match="actor: Extra inputs"):
        rollback_command("churn", "prod", b'{"reason": "x", "actor": "mallory"}', "bob")


def test_timer_keys_are_per_minute():
    from datetime import UTC, datetime

    first = timer_command("drift", datetime(2026, 11, 20, 11, 0, 30, tzinfo=UTC))
    key = first.key
    assert key == "timer:drift:2026-11-20T11:00" and first.command.trigger == key
    again = timer_command("drift", datetime(2026, 11, 20, 11, 0, 59, tzinfo=UTC), past_due=True)
    assert again.key == key and again.source == "timer drift (past due)"
    # the command's time is the minute: a retry of the occurrence judges what the first attempt judged
    assert first.command.end == again.command.end == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    assert timer_command("slo", datetime(2026, 11, 20, 11, 0, 42, tzinfo=UTC)).command.now == first.command.end
    with pytest.raises(InvalidInput):
        timer_command("backup", datetime(2026, 11, 20, tzinfo=UTC))
