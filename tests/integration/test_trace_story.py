"""One incident, one trace: upload → promote → alarm → rollback through the real functions, exported over OTLP.

Every invocation runs in a process of its own (a fresh Lambda container, a fresh
Functions worker) with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at an OTLP/HTTP receiver
on 127.0.0.1, so spans reach the test only through the exporter, and the trace crosses
from one function to the next only through what ModelPilot carries:

* the upload starts the trace under the platform's context (Lambda's X-Ray header, the
  Functions host's ``traceparent``);
* the release pipeline that reacts to ``ModelPromoted`` passes the event's traceparent
  on: in the promote function's payload on AWS, as the ``traceparent`` header of the
  operator API on Azure;
* the alarm carries no trace context: its delivery continues the trace recorded with the
  promotion that put the judged version live (the audit record's ``traceparent``), and
  links to the platform's own context of the alarm invocation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from modelpilot.domain.commands import PromoteModel, RegisterModel
from tests.support.otlp import OtlpReceiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def receiver():
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


def run_function(spec: dict, tmp_path: Path, env: dict[str, str]) -> tuple[dict, str]:
    """Run one invocation in its own process; return its reply and its stderr (the core's ECS log lines)."""
    name = f"{spec['function']}-{uuid.uuid4().hex[:8]}"
    spec_path, reply_path = tmp_path / f"{name}.spec.json", tmp_path / f"{name}.reply.json"
    spec_path.write_text(json.dumps({**spec, "reply": str(reply_path)}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.function_process", str(spec_path)],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(reply_path.read_text(encoding="utf-8")), done.stderr


def xray_root() -> tuple[str, str, str]:
    """A new X-Ray trace header as Lambda sets it, its trace id in W3C form, and its parent id."""
    epoch, rest, parent = f"{int(time.time()):08x}", uuid.uuid4().hex[:24], uuid.uuid4().hex[:16]
    return f"Root=1-{epoch}-{rest};Parent={parent};Sampled=1", epoch + rest, parent


def one(spans, name, **attributes):
    found = [s for s in spans if s.name == name and all(s.attributes.get(k) == v for k, v in attributes.items())]
    assert len(found) == 1, f"{name} {attributes}: {[(s.name, s.attributes) for s in spans]}"
    return found[0]


def tree(spans) -> str:
    """The spans of one trace as an indented tree (printed when a test fails, and in the docs)."""
    children: dict[str, list] = {}
    ids = {s.span_id for s in spans}
    for span in spans:
        children.setdefault(span.parent_span_id if span.parent_span_id in ids else "", []).append(span)

    def lines(parent: str, depth: int) -> list[str]:
        out = []
        for span in children.get(parent, []):
            faas = span.attributes.get("faas.name")
            label = f"{span.name} [{span.kind.lower()}{', ' + faas if faas and faas != span.name else ''}]"
            out.append("  " * depth + label)
            out += lines(span.span_id, depth + 1)
        return out

    return "\n".join(lines("", 0))


# -- AWS ----------------------------------------------------------------------------------------
AWS_POLICY = """\
version: 1
environments: [dev, prod]
defaults:
  rollback:
    prod: {alarms: ["modelpilot/*"]}
"""


def bus_events(stack):
    sqs = stack.client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return found
        found += [json.loads(m["Body"]) for m in batch]


def test_aws_story_is_one_trace_across_the_functions(request, monkeypatch, tmp_path, make_package, receiver):
    from modelpilot.bootstrap import get_bus
    from tests.support.aws import put_policy, upload_package
    from tests.support.aws_events import alarm_change, handler_stack, s3_notification

    stack = next(handler_stack(request, monkeypatch))
    put_policy(stack, AWS_POLICY)
    bus = get_bus()  # before the story: v1 runs in prod
    upload_package(stack, make_package("churn", auc=0.81), "models/churn/v1")
    bus.handle(RegisterModel(f"s3://{stack.bucket}/models/churn/v1", actor="system:test", auto_promote=True))
    bus.handle(PromoteModel("churn", "prod", actor="user:ops", version=1))
    bus_events(stack)
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "MODELPILOT_LOG_LEVEL": "INFO"}

    # 1. v2 is uploaded: S3 → model_upload, under the X-Ray trace Lambda starts
    header, trace_id, xray_parent = xray_root()
    key = upload_package(stack, make_package("churn", auc=0.83), "models/churn/v2")
    reply, _ = run_function(
        {"cloud": "aws", "function": "model_upload", "event": s3_notification(stack.bucket, key)},
        tmp_path,
        {**env, "_X_AMZN_TRACE_ID": header},
    )
    assert reply["results"][0]["status"] == "registered"
    [promoted] = [e for e in bus_events(stack) if e["detail-type"] == "ModelPromoted"]
    assert promoted["detail"]["version"] == 2 and promoted["detail"]["traceparent"].split("-")[1] == trace_id

    # 2. the release pipeline promotes v2 to prod, passing the event's trace on
    promote_header, promote_trace, _ = xray_root()
    payload = {
        "action": "promote",
        "model": "churn",
        "environment": "prod",
        "version": 2,
        "traceparent": promoted["detail"]["traceparent"],
    }
    reply, _ = run_function(
        {"cloud": "aws", "function": "promote", "event": payload}, tmp_path, {**env, "_X_AMZN_TRACE_ID": promote_header}
    )
    assert reply["status"] == "promoted"

    # 3. CloudWatch fires; the alarm function rolls prod back
    alarm_header, alarm_trace, alarm_parent = xray_root()
    reply, _ = run_function(
        {"cloud": "aws", "function": "alarm", "event": alarm_change("modelpilot/churn/prod/error-rate")},
        tmp_path,
        {**env, "_X_AMZN_TRACE_ID": alarm_header},
    )
    assert reply["results"][0]["status"] == "rolled_back"

    spans = receiver.wait_for({"model_upload", "promote", "alarm", "RollbackModel"})
    story = [s for s in spans if s.trace_id == trace_id]
    print(tree(story))
    upload = one(story, "model_upload")
    register = one(story, "RegisterModel")
    promote = one(story, "promote")
    promote_prod = one(story, "PromoteModel", **{"modelpilot.environment": "prod"})
    alarm = one(story, "alarm")
    handle = one(story, "HandleAlarm")
    rollback = one(story, "RollbackModel")

    # the parent/child links across the three functions
    assert upload.parent_span_id == xray_parent  # Lambda's X-Ray segment of the upload
    assert register.parent_span_id == upload.span_id
    assert promote.parent_span_id == register.span_id  # the ModelPromoted event's traceparent
    assert promote_prod.parent_span_id == promote.span_id
    assert alarm.parent_span_id == promote_prod.span_id  # the release the alarm judges
    assert handle.parent_span_id == alarm.span_id
    assert rollback.parent_span_id == handle.span_id
    # the invocations' own X-Ray traces are linked, not lost
    assert [(t, a["modelpilot.link"]) for t, _s, a in promote.links] == [(promote_trace, "platform")]
    assert [(t, s) for t, s, _a in alarm.links] == [(alarm_trace, alarm_parent)]
    # what each span says
    assert {s.kind for s in (upload, promote, alarm)} == {"CONSUMER"}
    assert (rollback.attributes["modelpilot.from_version"], rollback.attributes["modelpilot.to_version"]) == (2, 1)
    assert rollback.attributes["modelpilot.outcome"] == "rolled_back"
    assert all(s.resource["service.name"] == "modelpilot" and s.resource["cloud.provider"] == "aws" for s in story)
    # nothing of the story leaked into another trace
    assert {s.trace_id for s in spans if s.name in {"RegisterModel", "PromoteModel", "HandleAlarm"}} == {trace_id}

    # the audit records carry the trace: the incident timeline links to it
    records = get_bus().services.registry.audit_records("churn")
    moves = {(r.action, r.to_version): r.evidence.get("traceparent", "") for r in records if r.environment == "prod"}
    assert moves[("promote", 2)].split("-")[1:3] == [trace_id, promote_prod.span_id]
    assert moves[("rollback", 1)].split("-")[1:3] == [trace_id, rollback.span_id]


# -- Azure --------------------------------------------------------------------------------------
AZURE_POLICY = """\
version: 1
environments: [dev, prod]
defaults:
  rollback:
    prod:
      alarms: [churn-prod-feature-drift]
"""


def logged_events(stderr: str) -> list[dict]:
    """The domain events the Azure backend logged (no Event Grid topic configured), from its ECS lines."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("log", {}).get("logger") == "modelpilot.events":
                found.append(entry["modelpilot"])
    return found


def test_azure_story_is_one_trace_across_the_functions(request, monkeypatch, tmp_path, receiver):
    from tests.support.azure_functions import AzureApp, load_event

    app = AzureApp(request, monkeypatch, tmp_path, AZURE_POLICY)
    try:
        app.upload_package("churn/v1", auc=0.81)
        app.bus.handle(RegisterModel(f"az://{app.container}/churn/v1", actor="alice@contoso.com", auto_promote=True))
        app.bus.handle(PromoteModel("churn", "prod", actor="alice@contoso.com", version=1))
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}

        # 1. v2 lands in the container: Event Grid → model_upload, under the host's trace
        trace_id, host_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        etag = app.upload_package("churn/v2", auc=0.83)
        _, stderr = run_function(
            {
                "cloud": "azure",
                "function": "model_upload",
                "trigger": "event",
                "event": app.blob_event("churn/v2", etag),
                "trace_parent": f"00-{trace_id}-{host_span}-01",
            },
            tmp_path,
            env,
        )
        [promoted] = [e for e in logged_events(stderr) if e["event"]["event"] == "ModelPromoted"]
        traceparent = promoted["traceparent"]
        assert traceparent.split("-")[1] == trace_id

        # 2. the release pipeline calls the operator API with the event's traceparent; the host continues it
        reply, _ = run_function(
            {
                "cloud": "azure",
                "function": "api_promote",
                "trigger": "http",
                "http": {
                    "method": "POST",
                    "route": "models/churn/environments/prod/promote",
                    "params": {"model": "churn", "env": "prod"},
                    "body": {"version": 2, "reason": "release train"},
                    "headers": {"traceparent": traceparent},
                },
                "trace_parent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
            },
            tmp_path,
            env,
        )
        assert reply["status"] == 200 and reply["body"]["status"] == "promoted"

        # 3. the Azure ML model monitor breaches: Event Grid → azureml_monitor_alarm, a new host trace
        alarm_trace, alarm_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        run_function(
            {
                "cloud": "azure",
                "function": "azureml_monitor_alarm",
                "trigger": "event",
                "event": load_event("azureml_run_completed_monitor_breach.json"),
                "trace_parent": f"00-{alarm_trace}-{alarm_span}-01",
            },
            tmp_path,
            env,
        )
        assert app.registry.get_alias("churn", "prod").version == 1

        spans = receiver.wait_for({"model_upload", "api_promote", "azureml_monitor_alarm", "RollbackModel"})
        story = [s for s in spans if s.trace_id == trace_id]
        print(tree(story))
        upload = one(story, "model_upload")
        register = one(story, "RegisterModel")
        api = one(story, "api_promote")
        promote_prod = one(story, "PromoteModel", **{"modelpilot.environment": "prod"})
        alarm = one(story, "azureml_monitor_alarm")
        handle = one(story, "HandleAlarm")
        rollback = one(story, "RollbackModel")

        assert upload.parent_span_id == host_span  # the host's activity of the upload
        assert register.parent_span_id == upload.span_id
        assert api.parent_span_id == register.span_id and api.kind == "SERVER"
        assert api.attributes["http.response.status_code"] == 200
        assert promote_prod.parent_span_id == api.span_id
        assert alarm.parent_span_id == promote_prod.span_id
        assert [(t, s) for t, s, _a in alarm.links] == [(alarm_trace, alarm_span)]
        assert handle.parent_span_id == alarm.span_id and rollback.parent_span_id == handle.span_id
        assert all(s.resource["cloud.provider"] == "azure" for s in story)
    finally:
        app.close()
