"""AWS payload translators without any server: shapes, keys, ordering and cold-start imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelpilot.entrypoints.aws import alarm as aws_alarm
from modelpilot.entrypoints.aws import s3 as aws_s3
from modelpilot.entrypoints.aws import sagemaker as aws_sagemaker
from modelpilot.entrypoints.aws import schedule as aws_schedule
from modelpilot.entrypoints.aws.runtime import xray_traceparent
from modelpilot.exceptions import InvalidEvent
from tests.support.aws_events import load, s3_notification, sagemaker_change, sns_alarm


def test_documented_s3_samples_parse():
    [record] = aws_s3.parse_uploads(load("s3_object_created.json"))
    assert (record.bucket, record.key, record.etag) == (
        "lambda-artifacts-deafc19498e3f2df",
        "b21b84d653bb07b05b1e6b33684dc11b",
        "b21b84d653bb07b05b1e6b33684dc11b",
    )
    [bridge] = aws_s3.parse_uploads(load("eventbridge_s3_object_created.json"))
    assert (bridge.bucket, bridge.key, bridge.sequencer) == ("example-bucket", "IMG_m7fzo3.jpg", "006408CAD69598B05E")
    assert aws_s3.to_command(record) is None and aws_s3.to_command(bridge) is None  # not package manifests


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("models/churn+team/v1/modelpilot.json", "models/churn team/v1/modelpilot.json"),
        ("models%2Fchurn%2Fv1%2Fmodelpilot.json", "models/churn/v1/modelpilot.json"),  # moto encodes '/'
        ("models/gr%C3%B6%C3%9Fe/%E2%9C%93+1/modelpilot.json", "models/größe/✓ 1/modelpilot.json"),
        ("models/a%2Bb/v1/modelpilot.json", "models/a+b/v1/modelpilot.json"),
    ],
)
def test_s3_notification_keys_are_form_decoded(encoded, decoded):
    event = s3_notification("models-bucket", "x")
    event["Records"][0]["s3"]["object"]["key"] = encoded
    [upload] = aws_s3.parse_uploads(event)
    assert upload.key == decoded
    command = aws_s3.to_command(upload)
    assert command.package_uri == f"s3://models-bucket/{decoded.rsplit('/', 1)[0]}"
    assert command.auto_promote and command.actor == "system:s3-upload"


def test_sequencers_of_different_length_are_right_padded():
    assert aws_s3.sequencer_key("0A") > aws_s3.sequencer_key("09FFFF")  # "0A0000" > "09FFFF"
    records = [
        s3_notification("b-bucket", "models/m/v1/modelpilot.json", sequencer=s, etag=s)["Records"][0]
        for s in ("0055AED6DCD90281E6", "0055AED6DCD90281E5", "0055AED6DCD90281E7A")
    ]
    [newest] = aws_s3.parse_uploads({"Records": records})
    assert newest.etag == "0055AED6DCD90281E7A"


def test_non_create_records_and_test_events_are_skipped():
    deleted = s3_notification("b-bucket", "models/m/v1/modelpilot.json", event_name="ObjectRemoved:Delete")
    assert aws_s3.parse_uploads(deleted) == []
    assert aws_s3.parse_uploads({"Event": "s3:TestEvent", "Service": "Amazon S3"}) == []


def test_idempotency_keys_are_business_keys_not_event_ids():
    [upload] = aws_s3.parse_uploads(s3_notification("b-bucket", "models/m/v1/modelpilot.json", version_id="v-9"))
    assert upload.idempotency_key() == "upload:s3://b-bucket/models/m/v1/modelpilot.json@v-9"
    detail = aws_sagemaker.parse(sagemaker_change("Approved", "s3://b-bucket/models/m/v1"))
    assert aws_sagemaker.idempotency_key(detail) == f"sagemaker:{detail.ModelPackageArn}#Approved"
    [alarm] = aws_alarm.parse_alarms(sns_alarm(changed_at="2026-11-26T04:00:00.000+0000"))
    assert alarm.idempotency_key() == "modelpilot/churn/prod/latency-p95#ALARM@2026-11-26T04:00:00.000+0000"
    tick = aws_schedule.parse_tick(
        load("eventbridge_scheduler_input.json"), aws_schedule.ConsoleDrift, request_id="r", console_actor="console"
    )
    assert tick.key == {
        "schedule": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/modelpilot-drift",
        "at": "2026-11-26T04:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("modelpilot/churn/prod/error-rate", ("churn", "prod")),
        ("modelpilot/churn/prod", ("churn", "prod")),
        ("modelpilot/churn", None),
        ("modelpilot//prod/x", None),
        ("ServerCpuTooHigh", None),
    ],
)
def test_alarm_naming_convention(name, target):
    assert aws_alarm.target(name) == target


def test_alarm_command_carries_the_business_key_as_trigger():
    [alarm] = aws_alarm.parse_alarms(load("cloudwatch_alarm_state_change_modelpilot.json"))
    command = aws_alarm.to_command(alarm)
    assert (command.model, command.environment, command.state) == ("churn", "prod", "ALARM")
    assert command.trigger == "alarm:modelpilot/churn/prod/error-rate#ALARM@2019-10-02T17:04:40.989+0000"
    assert command.evidence["alarm_arn"].endswith(":alarm:modelpilot/churn/prod/error-rate")


def test_sagemaker_package_from_metadata_or_model_data_url():
    detail = aws_sagemaker.parse(load("sagemaker_model_package_state_change.json"))
    assert aws_sagemaker.package_uri(detail) == (
        "s3://sagemaker-project-p-idy6c3e1fiqj/versionedmp-p-idy6c3e1fiqj/"
        "AbaloneTrain/pipelines-4r83jejmhorv-TrainAbaloneModel-xw869y8C4a/output"
    )
    command = aws_sagemaker.to_command(detail)
    assert (command.status, command.auto_promote, command.source) == ("rejected", False, "sagemaker")
    pending = aws_sagemaker.parse(load("sagemaker_model_package_pending_modelpilot.json"))
    assert aws_sagemaker.package_uri(pending) == "s3://models-bucket/models/churn/v1"
    assert aws_sagemaker.to_command(pending).status == "pending_approval"


def test_invalid_event_names_the_field():
    with pytest.raises(InvalidEvent) as info:
        aws_sagemaker.parse({**load("sagemaker_model_package_state_change.json"), "detail": {"ModelPackageArn": "x"}})
    assert "detail" in info.value.message and info.value.details["field"].startswith("detail")


def test_xray_header_becomes_a_w3c_traceparent():
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert xray_traceparent(header) == "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    assert xray_traceparent("Root=1-5759e988-bd86;Parent=1") is None
    assert xray_traceparent("") is None


def test_importing_the_handlers_pulls_in_no_boto3_or_numpy():
    # Powertools itself imports the bare ``botocore`` package for its user agent (no client machinery)
    code = (
        "import sys; import functions.aws.model_upload, functions.aws.sagemaker_registry, functions.aws.alarm, "
        "functions.aws.operator_api, functions.aws.promote, functions.aws.rollback, functions.aws.drift_batch, "
        "functions.aws.slo_check, functions.aws.canary_tick; "
        "print(sorted(m for m in ('boto3', 'botocore.client', 'botocore.session', 'numpy') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_function_logging_leaves_the_core_logger_alone():
    import logging

    from modelpilot.entrypoints.aws.runtime import logger
    from tests.support.aws_events import LambdaContext, handler

    reply = handler("rollback")({"action": "rollback"}, LambdaContext())
    assert reply["error"] == "invalid_event"
    core = logging.getLogger("modelpilot")
    assert logger().name != "modelpilot"
    assert not any("Powertools" in type(h.formatter).__name__ for h in core.handlers)  # CLI output stays clean
