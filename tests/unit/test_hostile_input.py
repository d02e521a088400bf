"""Hostile or awkward input to the core parsers: each ends in a typed error naming the problem.

Every case here raised an untyped error (UnicodeEncodeError, TypeError, OverflowError,
RecursionError, ValueError) or was accepted and went where it should not, before the parsers
were made total. What these tests cannot show: that no other input escapes; the fuzzers in
tests/fuzz/ search for those.
"""

from __future__ import annotations

import json
import re

import pytest

from modelpilot.domain.commands import ApproveModel, PromoteModel, RollbackModel
from modelpilot.domain.durations import parse_duration
from modelpilot.entrypoints._validation import check_object_name
from modelpilot.entrypoints.aws import s3 as aws_s3
from modelpilot.entrypoints.azure.envelope import parse_envelope
from modelpilot.entrypoints.azure.events import upload_command
from modelpilot.exceptions import (
    InvalidEvent,
    InvalidInput,
    ManifestInvalidJSON,
    ManifestSchemaError,
    PayloadTooLarge,
    PolicyError,
)
from modelpilot.package.manifest import manifest_digest, parse_manifest
from modelpilot.policy import load_policy_text
from modelpilot.policy.drift import check_window
from modelpilot.policy.slo import SloSpec
from modelpilot.service.limits import check_command
from modelpilot.slo.prometheus import prometheus_rules
from tests.support.aws_events import load

SHA = "0" * 64


def _manifest(**fields) -> bytes:
    doc = {"name": "churn", "framework": "x", "artifacts": [{"path": "model.bin", "sha256": SHA, "size": 1}]}
    doc.update(fields)
    return json.dumps(doc).encode()


# -- manifest ------------------------------------------------------------------------
def test_a_lone_surrogate_is_a_schema_error_not_a_unicode_crash_when_digesting():
    with pytest.raises(ManifestSchemaError, match="surrogate") as caught:
        manifest_digest(parse_manifest(_manifest(description="\ud800")))
    assert caught.value.field == "description"


@pytest.mark.parametrize(
    ("path", "words"),
    [("model\x00.bin", "control characters"), ("a" * 300, "255 bytes"), ("d/" * 600 + "m", "1024"), (".", "inside")],
)
def test_unusable_artifact_paths_are_schema_errors(path, words):
    with pytest.raises(ManifestSchemaError, match=words) as caught:
        parse_manifest(_manifest(artifacts=[{"path": path, "sha256": SHA, "size": 1}]))
    assert caught.value.field == "artifacts.0.path"


def test_deep_json_and_huge_sizes_are_typed():
    with pytest.raises(ManifestInvalidJSON, match="nested"):
        parse_manifest(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ManifestSchemaError, match="size"):
        parse_manifest(_manifest(artifacts=[{"path": "m", "sha256": SHA, "size": 2**64}]))
    with pytest.raises(ManifestSchemaError, match="nested deeper"):
        parse_manifest(
            _manifest(tags={"a": "b"}, description=None, lineage={})[:-1] + b', "x": ' + b"[" * 40 + b"]" * 40 + b"}"
        )


@pytest.mark.parametrize(
    "uri", ["../outside.csv", "data/../../outside.csv", "/etc/passwd", "file:///etc/passwd", "C:/x.csv", "http://h/x"]
)
def test_reference_data_outside_the_package_is_refused(uri):
    with pytest.raises(ManifestSchemaError, match="inside the package") as caught:
        parse_manifest(_manifest(reference_data_uri=uri))
    assert caught.value.field == "reference_data_uri"


@pytest.mark.parametrize("uri", ["reference/ref.csv", "ref.parquet", "s3://data/churn/ref.parquet", "az://data/r.csv"])
def test_reference_data_inside_the_package_or_in_object_storage_is_kept(uri):
    assert parse_manifest(_manifest(reference_data_uri=uri)).reference_data_uri == uri


# -- policy ---------------------------------------------------------------------------
STAGING = "defaults:\n  environments:\n    staging:\n      {}\n"


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("soak: [1h]", "duration"),
        ("soak: 2024-01-01", "a date"),
        ("soak: .inf", "finite"),
        ("soak: " + "9" * 400, "2\\*\\*53"),
        ("approvals: " + "9" * 400, "2\\*\\*53"),
        ("soak: 5000000w", "10 years"),
        ("soak: !!binary aGVsbG8=", "bytes"),
        ('soak: "\\ud800"', "surrogate"),  # found by the policy fuzzer: pydantic raised UnicodeEncodeError
    ],
)
def test_policy_values_yaml_allows_but_a_policy_never_needs_are_typed_with_their_line(line, words):
    with pytest.raises(PolicyError, match=words) as caught:
        load_policy_text(STAGING.format(line), source="modelpilot.yaml")
    assert caught.value.details["line"] == 4
    assert "modelpilot.yaml" in caught.value.message and "(line 4)" in caught.value.message


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000,
        "[" * 100_000,
        "defaults: " + "{a: " * 50 + "1" + "}" * 50,
        # an alias bomb: nine levels of ten references each
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)),
    ],
)
def test_deep_or_exploding_policies_are_typed(text):
    with pytest.raises(PolicyError, match=r"nested|more than"):
        load_policy_text(text)


@pytest.mark.parametrize(
    "text",
    [
        "environments: ['../../outside', prod]",
        "environments: [dev, 'pr\"od']",
        "environments: [dev, PROD]",
        "environments: [dev, 'a/b']",
        "environments: [dev]\nmodels:\n  'ch\"urn': {}",
    ],
)
def test_environment_and_model_names_that_could_leave_a_path_or_a_query_are_refused(text):
    with pytest.raises(PolicyError, match="lower-case letters"):
        load_policy_text(text)


@pytest.mark.parametrize("value", [[1], {"a": 1}, None, True, float("inf"), float("nan"), 10**400, "1e400w", "-1h"])
def test_parse_duration_raises_only_value_error(value):
    with pytest.raises(ValueError, match=r"."):  # the point is the type: ValueError, never TypeError
        parse_duration(value)


@pytest.mark.parametrize("window", ["5000000w", "3000w", "0s", "30s", "367d"])
def test_drift_windows_outside_the_allowed_range_name_it(window):
    with pytest.raises(ValueError, match="between 1m and 366d"):
        check_window(window)
    assert check_window("24h") == 86400


# -- commands --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        PromoteModel("churn", "prod", "alice", version=True),
        PromoteModel("churn", "prod", "alice", version=2**63),
        PromoteModel("churn", "prod", "alice", version=0),
        ApproveModel("churn", 2**64, "prod", "bob"),
        RollbackModel("churn", "prod", "alice", "why", to_version=-1),
        PromoteModel("churn", "prod", "alice\ud800", version=1),
    ],
)
def test_commands_with_values_no_store_can_keep_are_invalid(command):
    with pytest.raises(InvalidInput):
        check_command(command)


def test_a_huge_reason_is_payload_too_large():
    with pytest.raises(PayloadTooLarge, match="4096"):
        check_command(RollbackModel("churn", "prod", "alice", "x" * 20_000_000))


# -- object names from events --------------------------------------------------------
@pytest.mark.parametrize("name", ["a/../modelpilot.json", "./modelpilot.json", "a//modelpilot.json", "/x", "a\\b"])
def test_object_names_with_dot_parts_are_invalid_events(name):
    with pytest.raises(InvalidEvent):
        check_object_name(name, "blob name")


def test_a_dot_dot_in_a_blob_subject_is_one_permanent_rejection():
    raw = load("eventgrid_blob_created_manifest.json")[0]
    raw["subject"] = "/blobServices/default/containers/models/blobs/churn/../../etc/modelpilot.json"
    with pytest.raises(InvalidEvent) as caught:
        upload_command(parse_envelope(raw), container="models")
    assert caught.value.retryable is False


def test_a_dot_dot_in_an_s3_key_is_a_permanent_rejection():
    event = load("s3_object_created.json")
    event["Records"][0]["s3"]["object"]["key"] = "models/churn/..%2F..%2Fother/modelpilot.json"
    with pytest.raises(InvalidEvent):
        aws_s3.deliveries(event)


# -- PromQL --------------------------------------------------------------------------
_LITERAL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def test_quotes_in_names_are_escaped_in_generated_promql():
    spec = SloSpec.model_validate(
        {
            "name": "availability",
            "environment": "prod",
            "objective": 0.99,
            "window": "28d",
            "sli": {
                "kind": "ratio",
                "source": "prometheus",
                "bad": {"query": 'http_requests_total{model="$model",env="$environment",code=~"5.."}'},
                "total": {"query": 'http_requests_total{model="$model",env="$environment"}'},
            },
        }
    )
    model = 'churn"} or vector(1) or {x="\\'
    rules = prometheus_rules([(model, spec)])
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"] if "modelpilot-slo" in g["name"]]
    live = spec.query(model, version=3)  # what the Prometheus metrics source sends at run time
    exprs += [live.total, live.bad]
    assert len(exprs) > 3
    for expr in exprs:
        values = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LITERAL.findall(expr)}
        assert values.get("model", model) == model  # every literal ends where the name ends
        assert "or vector(1) or" not in _LITERAL.sub("", expr)  # nothing of the name escaped into the query


# -- found by the fuzzers ------------------------------------------------------------------
def test_a_deeply_nested_alert_or_event_is_an_invalid_event_not_a_recursion_error():
    from modelpilot.entrypoints.azure.alerts import alert_command

    with pytest.raises(InvalidEvent, match="nested"):
        alert_command(b"[" * 3000 + b"]" * 3000)
    with pytest.raises(InvalidEvent, match="nested"):
        parse_envelope("[" * 3000 + "]" * 3000)
    wrapped: dict = {"id": "x"}
    for _ in range(2000):
        wrapped = {"input": wrapped}
    with pytest.raises(InvalidEvent):
        parse_envelope(wrapped)


def test_promtool_parses_rules_generated_for_a_name_with_quotes_and_backslashes(tmp_path):
    """The escaped rules are valid PromQL: promtool reads every expression (it would fail on a literal that ends early
    and leaves ``or vector(1)`` dangling, or on an unknown escape)."""
    import subprocess

    import yaml

    from tests.unit.slo.test_promtool_rules import promtool

    spec = SloSpec.model_validate(
        {
            "name": "availability",
            "environment": "prod",
            "objective": 0.99,
            "window": "28d",
            "sli": {
                "kind": "ratio",
                "source": "prometheus",
                "bad": {"query": 'http_requests_total{model="$model",code=~"5.."}'},
                "total": {"query": 'http_requests_total{model="$model"}'},
            },
        }
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(prometheus_rules([('churn"} or vector(1) or {x="\\', spec)])))
    done = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
