"""ECS log lines: the same fields from the CLI, the Lambda functions and the Azure functions.

Each runtime does the same work (register a package, which auto-promotes it to dev) and
its JSON lines are checked against the field names of the Elastic Common Schema: the
core's lines (stderr) and, on Lambda, the Powertools logger's (stdout).
"""

from __future__ import annotations

import json
import logging

import pytest

from modelpilot import telemetry

pytestmark = pytest.mark.integration

#: every line, whatever the runtime
BASE = {"@timestamp", "log.level", "message", "ecs.version", "log.logger", "service.name"}
#: every line written while a command runs
COMMAND = {"labels.model", "labels.environment", "labels.version", "labels.command"}
#: a registration's line (the version is known once registered; an environment is not involved)
REGISTER = {"labels.model", "labels.version", "labels.command"}
#: every line of a function invocation
INVOCATION = {
    "trace.id",
    "span.id",
    "transaction.id",
    "faas.name",
    "faas.execution",
    "faas.coldstart",
    "faas.trigger.type",
    "cloud.provider",
    "labels.correlation_id",
}
#: ECS field sets a ModelPilot line may use; anything else must be a label or under modelpilot.*
ECS_PREFIXES = (
    "@timestamp",
    "log.",
    "message",
    "ecs.",
    "service.",
    "trace.",
    "span.",
    "transaction.",
    "faas.",
    "cloud.",
    "labels.",
    "error.",
    "process.thread.name",
    "modelpilot",
)


def flatten(entry: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in entry.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not name.startswith(("modelpilot.", "modelpilot")):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def lines(text: str) -> list[dict]:
    return [flatten(json.loads(line)) for line in text.splitlines() if line.startswith("{")]


def handled(found: list[dict], command: str = "PromoteModel") -> dict:
    [line] = [f for f in found if f.get("message", "").startswith(f"handled {command}")]
    return line


def check(line: dict, required: set[str]) -> None:
    assert required <= set(line), f"missing {sorted(required - set(line))} in {sorted(line)}"
    assert all(name.startswith(ECS_PREFIXES) for name in line), sorted(
        n for n in line if not n.startswith(ECS_PREFIXES)
    )
    assert line["ecs.version"] == "1.6.0" and line["service.name"] == "modelpilot"
    assert line["@timestamp"].endswith("Z") and line["log.level"] in {"debug", "info", "warning", "error", "critical"}
    if "trace.id" in line:
        assert len(line["trace.id"]) == 32 and len(line["span.id"]) == 16
    if "transaction.id" in line:
        assert len(line["transaction.id"]) == 16


@pytest.fixture(autouse=True)
def info_logs(monkeypatch, capsys):
    """INFO lines of the core's logger, to this test's captured stderr."""
    import sys

    monkeypatch.setenv("MODELPILOT_LOG_LEVEL", "INFO")
    telemetry.configure_in_memory()  # an SDK provider, whatever ran before in this process
    telemetry.get_logger()
    root = logging.getLogger("modelpilot")
    saved = (root.level, list(root.handlers))

    class Stderr:  # whatever sys.stderr is when a line is written (the capture of the test phase)
        def write(self, text: str) -> int:
            return sys.stderr.write(text)

        def flush(self) -> None:
            sys.stderr.flush()

    handler = logging.StreamHandler(Stderr())
    handler.setFormatter(telemetry.EcsFormatter())
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    yield
    root.setLevel(saved[0])
    root.handlers = saved[1]


def test_cli_lines(make_package, tmp_path, capsys):
    from modelpilot.cli import main

    home = ["--home", str(tmp_path), "--actor", "alice"]
    assert main(["register", str(make_package("churn")), *home]) == 0
    capsys.readouterr()
    assert main(["promote", "churn", "--env", "dev", "--version", "1", *home]) == 0
    line = handled(lines(capsys.readouterr().err))
    check(line, BASE | COMMAND)
    assert (line["labels.model"], line["labels.environment"], line["labels.version"]) == ("churn", "dev", "1")
    assert line["log.logger"] == "modelpilot.bus" and line["labels.status"] == "promoted"


def test_lambda_lines(request, monkeypatch, make_package, capsys):
    from tests.support.aws import put_policy, upload_package
    from tests.support.aws_events import LambdaContext, handler, handler_stack, s3_notification

    stack = next(handler_stack(request, monkeypatch))
    put_policy(stack)
    key = upload_package(stack, make_package("churn"), "models/churn/v1")
    context = LambdaContext()
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    reply = handler("model_upload")(s3_notification(stack.bucket, key), context)
    assert reply["results"][0]["status"] == "registered"
    out, err = capsys.readouterr()
    core = handled(lines(err), "RegisterModel")
    check(core, BASE | REGISTER | INVOCATION)
    assert (core["labels.model"], core["labels.version"]) == ("churn", "1")
    assert core["faas.name"] == "model_upload" and core["faas.execution"] == context.aws_request_id
    assert core["cloud.provider"] == "aws" and core["trace.id"] == "5759e988bd862e3fe1be46a994272793"
    assert core["labels.correlation_id"]  # the S3 request id of the notification
    [powertools] = [f for f in lines(out) if f.get("message") == "model_upload: ok"]
    # the functions' Powertools logger writes the same fields (its summary line follows the delivery's span,
    # so it carries the invocation's X-Ray trace and no transaction)
    check(powertools, BASE | INVOCATION - {"transaction.id"})
    assert powertools["log.logger"] == "modelpilot-functions" and "transaction.id" not in powertools
    same = INVOCATION - {"span.id", "transaction.id"}
    assert {k: powertools[k] for k in same} == {k: core[k] for k in same}


def test_azure_lines(request, monkeypatch, tmp_path, capsys):
    from tests.support.azure_functions import AzureApp, HostContext, host_event, user_function

    app = AzureApp(request, monkeypatch, tmp_path)
    try:
        etag = app.upload_package("churn/v1")
        context = HostContext("model_upload", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        user_function("model_upload", context=context)(host_event(app.blob_event("churn/v1", etag)))
    finally:
        app.close()
    core = handled(lines(capsys.readouterr().err), "RegisterModel")
    check(core, BASE | REGISTER | INVOCATION)
    assert core["faas.name"] == "model_upload" and core["faas.execution"] == context.invocation_id
    assert core["cloud.provider"] == "azure" and core["trace.id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
