"""Run one function invocation in a process of its own, as a fresh Lambda container or Functions worker would.

``python -m tests.support.function_process SPEC`` reads a JSON spec::

    {"cloud": "aws", "function": "model_upload", "event": {...}, "reply": "reply.json"}
    {"cloud": "azure", "function": "api_promote", "trigger": "http", "http": {...},
     "trace_parent": "00-…", "reply": "reply.json"}

and writes the function's reply to ``reply``. Settings come from the environment the
parent passes (the stack's, ``OTEL_EXPORTER_OTLP_ENDPOINT``, and on Lambda the
invocation's ``_X_AMZN_TRACE_ID``). Nothing is shared with the parent process but the
servers on 127.0.0.1: a trace can only cross from one function to the next through
what the functions themselves carry (events, payloads, headers, the audit log).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def run_aws(spec: dict[str, Any]) -> Any:
    import importlib

    from tests.support.aws_events import LambdaContext

    handler = importlib.import_module(f"functions.aws.{spec['function']}").handler
    context = LambdaContext(function_name=f"modelpilot-{spec['function']}", **spec.get("context", {}))
    return handler(spec["event"], context)


def run_azure(spec: dict[str, Any]) -> Any:
    from tests.support.azure_functions import HostContext, host_event, http_request, user_function

    context = HostContext(spec["function"], spec.get("trace_parent"))
    function = user_function(spec["function"], context=context)
    if spec["trigger"] == "http":
        http = spec["http"]
        response = function(
            http_request(http["method"], http["route"], http["params"], body=http.get("body"), headers=http["headers"])
        )
        return {"status": response.status_code, "body": json.loads(response.get_body() or b"null")}
    function(host_event(spec["event"]))
    return {"invocation_id": context.invocation_id}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    reply = run_aws(spec) if spec["cloud"] == "aws" else run_azure(spec)
    Path(spec["reply"]).write_text(json.dumps(reply, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
