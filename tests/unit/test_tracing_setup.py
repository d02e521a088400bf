"""One set-up path per runtime: the real provider is installed first, and only once.

Each case runs in a fresh interpreter (a new Lambda container, a new Functions worker),
because a process has one global tracer provider.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, logging, sys
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
logging.getLogger().addHandler(Keep())
from opentelemetry import trace
from modelpilot import telemetry
calls = []
def azure_monitor(resource):
    calls.append(dict(resource.attributes))
runtime = sys.argv[1]
first = telemetry.setup_tracing(runtime, azure_monitor=azure_monitor)
again = telemetry.setup_tracing("azure" if runtime == "aws" else runtime)
with telemetry.command_span("Probe"):
    traceparent = telemetry.current_traceparent()
provider = trace.get_tracer_provider()
processors = [type(p).__name__ for p in getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())]
exporters = [type(getattr(p, "span_exporter", None)).__name__ for p in getattr(getattr(provider, "_active_span_processor", None), "_span_processors", ())]
print(json.dumps({"first": first, "again": again, "provider": type(provider).__name__, "processors": processors,
                  "exporters": exporters, "traceparent": traceparent, "azure": calls,
                  "overriding": [m for m in records if "Overriding" in m]}))
"""


def run(runtime: str, **env: str) -> dict:
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, runtime],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_otlp_endpoint_installs_an_exporting_provider_before_any_span():
    got = run("aws", OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    assert (got["first"], got["again"]) == ("otlp", "otlp")  # the first set-up wins, nothing is overridden
    assert got["provider"] == "TracerProvider" and got["processors"] == ["BatchSpanProcessor"]
    assert got["exporters"] == ["OTLPSpanExporter"]
    assert got["overriding"] == [] and got["traceparent"].startswith("00-")


def test_a_function_without_exporter_still_has_ids_to_propagate():
    got = run("aws")
    assert got["first"] == "ids_only" and got["processors"] == [] and got["traceparent"].startswith("00-")


def test_the_cli_without_endpoint_pays_nothing():
    got = run("cli")
    assert got["first"] == "none" and got["provider"] == "ProxyTracerProvider" and got["traceparent"] is None


def test_azure_monitor_distro_when_its_connection_string_is_set():
    conn = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
    got = run("azure", APPLICATIONINSIGHTS_CONNECTION_STRING=conn)
    assert got["first"] == "azure_monitor"
    [resource] = got["azure"]
    assert resource["service.name"] == "modelpilot" and resource["cloud.provider"] == "azure"


@pytest.mark.parametrize("runtime", ["azure", "aws"])
def test_otlp_wins_over_the_azure_monitor_distro(runtime):
    got = run(runtime, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", APPLICATIONINSIGHTS_CONNECTION_STRING="x")
    assert got["first"] == "otlp" and got["azure"] == []


def test_xray_and_w3c_map_through_the_propagator():
    from modelpilot import telemetry

    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    traceparent = telemetry.traceparent_from_xray(header)
    assert traceparent == "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    assert telemetry.xray_header(traceparent) == header
    assert (
        telemetry.traceparent_from_xray("Root=garbage") is None and telemetry.xray_header("not-a-traceparent") is None
    )


def test_a_function_runtime_after_the_cli_still_gets_ids():
    """The CLI's set-up installs nothing; a handler run later in the same process installs its provider."""
    script = (
        "from modelpilot import telemetry\n"
        "print(telemetry.setup_tracing('cli'), telemetry.setup_tracing('aws'), telemetry.setup_tracing('cli'))\n"
        "with telemetry.command_span('Probe'):\n"
        "    print(telemetry.current_traceparent() is not None)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_"))}
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["none", "ids_only", "ids_only", "True"]
