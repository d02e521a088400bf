"""Fuzz targets: every parser and entrypoint translator, fed real payloads mutated by hypothesis.

Each target is a strategy and a ``run`` function. ``run`` returns a label for the outcome
(``"ok"`` or the typed error's ``code``) and fails (``AssertionError`` or the escaped exception)
when the outcome is anything else: an untyped exception, or an accepted input that breaks an
invariant (a path that leaves the package, a name that could leave the home, a command no
store can keep). The seeds are the payload fixtures of ``tests/events``, so mutations stay close
to what the platforms really send.

Used by ``tests/fuzz/test_fuzz.py`` (a small profile in CI) and ``benchmarks/fuzz.py`` (10,000
cases per target, counts printed).
"""

from __future__ import annotations

import base64
import copy
import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from modelpilot.domain.commands import Command, RegisterModel
from modelpilot.exceptions import ModelPilotError
from modelpilot.service.limits import check_command

EVENTS = Path(__file__).resolve().parents[1] / "events"
REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
DEEP = "__DEEP__"

NASTY = [
    "",
    " ",
    "..",
    "../outside.csv",
    "/etc/passwd",
    "file:///etc/passwd",
    "a/../../b",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\u202e",
    "é",
    "💥",
    "a" * 300,
    "a" * 5000,
    '"',
    "\\",
    "'; DROP TABLE x; --",
    '"} or vector(1) or {x="',
    "<script>alert(1)</script>",
    "${HOME}",
    "$model",
    "%2e%2e%2f",
    "1h",
    "5000000w",
    "3000w",
    ".inf",
    "-1",
    "1e400",
    "9" * 400,
    "2026-11-20T09:15:02Z",
    "true",
    "null",
    "[1h]",
    "models/churn/v1/modelpilot.json",
    "models/churn/../../x/modelpilot.json",
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**53 - 2, max_value=2**70),
    st.integers(max_value=-(2**63)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(NASTY),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, seed: Any, *, deep: bool = True) -> Any:
    """``seed`` with one to four of its values replaced, deleted, or swapped for deep nesting."""
    doc = copy.deepcopy(seed)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "deep" if deep else "replace"]))
        new = DEEP if action == "deep" else draw(json_values)
        if not path:
            doc = new
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = new
    return doc


def dumps(doc: Any, depth: int = 5000) -> str:
    """JSON text of ``doc``; the deep marker becomes ``depth`` nested arrays (no serialiser nests that deep)."""
    return json.dumps(doc).replace(json.dumps(DEEP), "[" * depth + "]" * depth)


def loads_deep(doc: Any) -> Any:
    """``doc`` as a translator receives it after the platform parsed the JSON (the deep marker nested 900 deep)."""
    if doc == DEEP:
        value: Any = []
        for _ in range(900):
            value = [value]
        return value
    if isinstance(doc, dict):
        return {k: loads_deep(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [loads_deep(v) for v in doc]
    return doc


def fixture(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def outcome(call: Callable[[], Any], check: Callable[[Any], None] | None = None) -> str:
    """Run ``call``; return ``"ok"`` or the typed error's code. Anything untyped propagates (the fuzzer fails)."""
    try:
        result = call()
    except ModelPilotError as exc:
        assert exc.message, "a typed error must say what is wrong"
        return exc.code
    if check is not None:
        check(result)
    return "ok"


# -- invariants on accepted input ---------------------------------------------------
def inside(path: str) -> bool:
    norm = posixpath.normpath(path)
    return not (path.startswith("/") or norm == ".." or norm.startswith("../") or "\\" in path or "\x00" in path)


def storable(command: Command | None) -> None:
    if command is None:
        return
    check_command(command)  # raises InvalidInput: then the bus would refuse it, typed; assert it does not here
    if isinstance(command, RegisterModel):
        _, _, rest = command.package_uri.partition("://")
        assert all(part not in {"", ".", ".."} for part in rest.split("/")[1:]), command.package_uri


def commands_of(result: Any) -> list[Command | None]:
    items = result if isinstance(result, list) else [result]
    out = []
    for item in items:
        out.append(getattr(item, "command", item))
    return out


# -- targets ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    run: Callable[[Any], str]


def _manifest_seed() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "name": "churn",
        "framework": "numpy-logreg",
        "description": "a model",
        "metrics": {"auc": 0.91, "latency_p95_ms": 12.5},
        "lineage": {"run_id": "run-42", "code_revision": "3f2a9c1", "training_data_uri": "s3://data/churn"},
        "features": [
            {"name": "tenure", "type": "numeric", "minimum": 0, "maximum": 600},
            {"name": "plan", "type": "categorical", "allowed_values": ["basic", "pro"]},
        ],
        "reference_data_uri": "reference/reference.csv",
        "artifacts": [{"path": "model.npz", "sha256": "0" * 64, "size": 1234}],
        "tags": {"team": "ml"},
    }


def _manifest_run(raw: bytes) -> str:
    from modelpilot.package.manifest import manifest_digest, parse_manifest

    def check(manifest: Any) -> None:
        manifest_digest(manifest)  # canonical JSON of what was accepted must encode
        for artifact in manifest.artifacts:
            assert inside(artifact.path), artifact.path
            assert all(len(p.encode()) <= 255 for p in artifact.path.split("/")), artifact.path
        ref = manifest.reference_data_uri
        assert ref is None or ref.startswith(("s3://", "az://")) or inside(ref), ref

    return outcome(lambda: parse_manifest(raw), check)


MANIFEST = Target(
    "manifest",
    st.one_of(
        mutated(_manifest_seed()).map(lambda d: dumps(d).encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
    ),
    _manifest_run,
)


def _policy_seed() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "infra" / "prometheus" / "example-policy.yaml").read_text("utf-8"))
    doc["operators"] = ["alice@example.com", "*@ops.example.com"]
    doc["defaults"] = {
        "environments": {
            "staging": {
                "thresholds": ["auc >= 0.80", "latency_p95_ms <= 50"],
                "no_regression": [{"metric": "auc", "greater_is_better": True, "min_absolute_change": -0.005}],
                "soak": "1h",
            },
            "prod": {
                "approvals": 1,
                "require_no_drift_alert": True,
                "require_slo_healthy": True,
                "canary": {
                    "steps": [5, 25, 50, 100],
                    "interval": "10m",
                    "min_samples": 200,
                    "failure_limit": 1,
                    "analysis": [
                        {"name": "error-ratio", "threshold": 0.01},
                        {
                            "name": "latency",
                            "threshold": 0.02,
                            "sli": {
                                "kind": "threshold",
                                "source": "local",
                                "threshold_ms": 250,
                                "good": {"query": "requests.fast"},
                                "total": {"query": "requests"},
                            },
                        },
                    ],
                },
            },
        },
        "drift": {"window": "24h"},
    }
    return doc


def _policy_text(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError, RecursionError):
        return dumps(doc)


def _policy_run(text: str) -> str:
    from modelpilot.policy import load_policy_text

    def check(policy: Any) -> None:
        for env in policy.environments:
            assert NAME.match(env), env  # safe as a path part, a PromQL value and HTML
        for model in policy.models:
            assert NAME.match(model), model
        for model in [None, *policy.models]:
            block = policy.model_policy(model) if model else policy.defaults
            if block.drift is not None:
                assert 60 <= block.drift.window_seconds <= 366 * 86400
            for spec in block.slos:
                assert spec.window_seconds > 0  # a duration that was accepted must convert
            for env in policy.environments:
                canary = policy.gates_for(model or "any", env).canary
                if canary is not None:  # an accepted canary can be run: steps rise to 100, the interval is sane
                    assert len(canary.steps) >= 2 and canary.steps[-1] == 100, canary.steps
                    assert all(0 < a < b for a, b in zip(canary.steps, canary.steps[1:], strict=False))
                    assert canary.interval >= 60 and canary.metrics()

    return outcome(lambda: load_policy_text(text), check)


POLICY = Target(
    "policy",
    st.one_of(
        mutated(_policy_seed()).map(lambda d: _policy_text(d).replace(repr(DEEP), "[" * 3000 + "]" * 3000)),
        st.text(max_size=200),
        st.sampled_from(
            [
                "defaults:\n  environments:\n    staging:\n      soak: [1h]\n",
                "defaults:\n  environments:\n    staging:\n      soak: 2026-01-01\n",
                "defaults:\n  environments:\n    staging:\n      soak: .inf\n",
                "a: &a [1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b]\n",
                "!!python/object/apply:os.system ['true']",
            ]
        ),
    ),
    _policy_run,
)


def _durations_run(text: str) -> str:
    from modelpilot.cli._common import CliError
    from modelpilot.cli.wait import _duration
    from modelpilot.policy.drift import check_window

    try:
        seconds = check_window(text)
    except ValueError as exc:
        assert "between 1m and 366d" in str(exc)
    else:
        assert 60 <= seconds <= 366 * 86400
    try:
        _duration(text, "--timeout")
    except CliError as exc:
        assert exc.code == 2
        return "invalid"
    return "ok"


DURATIONS = Target(
    "cli durations and windows",
    st.one_of(
        st.text(max_size=20),
        st.from_regex(r"\A\s*-?[0-9]{0,30}(\.[0-9]{0,12})?\s*[smhdwy]?\s*\Z"),
        st.tuples(st.integers(min_value=0, max_value=10**8), st.sampled_from("smhdw")).map(lambda t: f"{t[0]}{t[1]}"),
        st.sampled_from(NASTY),
    ),
    _durations_run,
)


def _translator(name: str, seeds: list[str], call: Callable[[Any], Any], *, deep: bool = True) -> Target:
    docs = [fixture(s) for s in seeds]
    strategy = st.one_of(*(mutated(d, deep=deep).map(loads_deep) for d in docs), json_values)

    def run(event: Any) -> str:
        return outcome(lambda: call(event), lambda result: [storable(c) for c in commands_of(result)] and None)

    return Target(name, strategy, run)


def _aws_targets() -> list[Target]:
    from modelpilot.entrypoints.aws import alarm, s3, sagemaker, schedule
    from modelpilot.entrypoints.aws import quality as aws_quality

    return [
        _translator("aws s3 upload", ["s3_object_created.json", "eventbridge_s3_object_created.json"], s3.deliveries),
        _translator(
            "aws alarm",
            ["sns_cloudwatch_alarm_modelpilot.json", "cloudwatch_alarm_state_change_modelpilot.json"],
            alarm.deliveries,
        ),
        _translator(
            "aws sagemaker registry",
            ["sagemaker_model_package_pending_modelpilot.json", "sagemaker_model_package_state_change.json"],
            sagemaker.delivery,
        ),
        _translator(
            "aws schedule",
            ["eventbridge_scheduler_input.json", "eventbridge_scheduled.json"],
            lambda e: schedule.drift_delivery(e, request_id="req-1", console_actor="console:test"),
        ),
        _translator(
            "aws quality feedback",
            ["s3_object_created.json", "eventbridge_s3_object_created.json"],
            aws_quality.feedback_deliveries,
        ),
    ]


def _azure_event(seeds: list[str], translate: Callable[[Any], Any]) -> Callable[[Any], Any]:
    from modelpilot.entrypoints.azure.envelope import parse_envelope

    def call(raw: Any) -> Any:
        return translate(parse_envelope(raw))

    return call


def _azure_targets() -> list[Target]:
    from modelpilot.entrypoints.azure import alerts, events

    def first(name: str) -> str:
        return name

    upload_seeds = ["eventgrid_blob_created_manifest.json", "eventgrid_blob_created_manifest_cloudevents.json"]
    return [
        _translator(
            "azure blob upload",
            upload_seeds,
            _azure_event(upload_seeds, lambda env: events.upload_command(env, container="models")),
        ),
        _translator(
            "azure ml model registered",
            ["azureml_model_registered_modelpilot.json", "azureml_model_registered.json"],
            _azure_event([], events.model_registered_command),
        ),
        _translator(
            "azure ml alarm",
            ["azureml_dataset_drift_detected.json", "azureml_run_completed_monitor_breach.json"],
            _azure_event([], events.alarm_command),
        ),
        Target(
            "azure monitor alert",
            st.one_of(
                mutated(_alert_seed()).map(lambda d: dumps(d, depth=3000).encode("utf-8", "surrogatepass")),
                st.binary(max_size=100),
            ),
            lambda body: outcome(lambda: alerts.alert_command(body), lambda t: storable(getattr(t, "command", None))),
        ),
        Target(
            "azure blob trigger name",
            st.tuples(st.one_of(st.text(max_size=60), st.sampled_from(NASTY)), st.one_of(st.none(), st.text())),
            lambda pair: outcome(
                lambda: events.blob_trigger_command(first(pair[0]), pair[1], container="models"),
                lambda t: storable(getattr(t, "command", None)),
            ),
        ),
    ]


def _alert_seed() -> dict[str, Any]:
    return {
        "schemaId": "azureMonitorCommonAlertSchema",
        "data": {
            "essentials": {
                "alertId": "/subscriptions/x/providers/Microsoft.AlertsManagement/alerts/1",
                "alertRule": "modelpilot-churn-prod-errors",
                "severity": "Sev1",
                "signalType": "Metric",
                "monitorCondition": "Fired",
                "firedDateTime": "2026-11-20T09:15:02.123Z",
                "configurationItems": ["churn"],
            },
            "alertContext": {},
            "customProperties": {"modelpilot-model": "churn", "modelpilot-environment": "prod"},
        },
    }


def _api_targets() -> list[Target]:
    from modelpilot.entrypoints._validation import json_body, validate
    from modelpilot.entrypoints.aws import api as aws_api
    from modelpilot.entrypoints.azure import http

    bodies = [
        {"version": 3, "reason": "weekly release", "dry_run": False},
        {"reason": "error spike", "to_version": 2, "from_version": 3},
        {"environment": "prod", "comment": "looks good"},
    ]
    raw_bodies = st.one_of(
        *(mutated(b).map(lambda d: dumps(d).encode("utf-8", "surrogatepass")) for b in bodies),
        st.binary(max_size=100),
        st.sampled_from([b"", b"null", b"[]", b"{" * 3000, b'{"version": true}', b'{"version": 1e400}']),
    )

    def aws(pair: tuple[bytes, bool]) -> str:
        raw, b64 = pair
        body = base64.b64encode(raw).decode() if b64 else raw.decode("utf-8", "surrogateescape")

        def call() -> Any:
            data = json_body(body, base64_encoded=b64)
            for model in (aws_api._PromoteBody, aws_api._RollbackBody, aws_api._ApproveBody):
                try:
                    parsed = validate(model, data, "request body")
                except ModelPilotError:
                    continue
                for name in ("version", "to_version"):
                    value = getattr(parsed, name, None)
                    assert value is None or (type(value) is int and 1 <= value <= 2**53), value
            return data

        return outcome(call)

    def azure(raw: bytes) -> str:
        def call() -> Any:
            for model in (http.PromoteBody, http.RollbackBody, http.ApproveBody):
                try:
                    parsed = http.parse_body(raw, model)
                except ModelPilotError:
                    continue
                for name in ("version", "to_version", "from_version"):
                    value = getattr(parsed, name, None)
                    assert value is None or (type(value) is int and 1 <= value <= 2**53), value
            return http.parse_body(raw, http.PromoteBody)

        return outcome(call)

    principals = st.one_of(
        mutated({"auth_typ": "aad", "name_typ": "name", "claims": [{"typ": "name", "val": "alice@contoso.com"}]}).map(
            lambda d: base64.b64encode(dumps(d, depth=3000).encode("utf-8", "surrogatepass")).decode()
        ),
        st.text(max_size=40),
    )

    def principal(value: str) -> str:
        return outcome(lambda: http.actor_from_headers({"X-MS-CLIENT-PRINCIPAL": value}, trusted=True))

    return [
        Target("aws operator api body", st.tuples(raw_bodies, st.booleans()), aws),
        Target("azure operator api body", raw_bodies, azure),
        Target("azure client principal", principals, principal),
    ]


def all_targets() -> list[Target]:
    """Every fuzz target, in the order the report prints them."""
    return [MANIFEST, POLICY, DURATIONS, *_aws_targets(), *_azure_targets(), *_api_targets()]
