"""The policy file: validation with precise errors, defaults overlaid per model, JSON Schema."""

from __future__ import annotations

import pytest

from modelpilot.exceptions import PolicyError, UnknownEnvironment
from modelpilot.policy import default_policy, load_policy, load_policy_text, policy_schema

POLICY = """
version: 1
environments: [dev, staging, prod]
defaults:
  environments:
    staging:
      thresholds: ["auc >= 0.80"]
      soak: 1h
    prod:
      approvals: 1
      no_regression: [{metric: auc, min_absolute_change: -0.01}]
models:
  churn:
    environments:
      prod: {approvals: 2}
"""


def test_model_block_overlays_defaults_field_by_field():
    policy = load_policy_text(POLICY)
    churn = policy.gates_for("churn", "prod")
    assert churn.approvals == 2
    assert [r.metric for r in churn.no_regression] == ["auc"]  # inherited
    other = policy.gates_for("fraud", "prod")
    assert other.approvals == 1
    assert policy.gates_for("churn", "staging").soak == 3600
    assert policy.gates_for("churn", "dev").thresholds == []
    assert policy.previous_environment("prod") == "staging"
    assert policy.previous_environment("dev") is None


def test_unknown_environment():
    with pytest.raises(UnknownEnvironment, match="the policy defines dev, staging, prod"):
        default_policy().gates_for("churn", "qa")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            "defaults: {environments: {staging: {thresholds: ['auc => 0.8']}}}",
            "defaults.environments.staging.thresholds.0",
        ),
        ("defaults: {environments: {staging: {soak: 'soon'}}}", "defaults.environments.staging.soak"),
        ("defaults: {environments: {staging: {approvals: -1}}}", "defaults.environments.staging.approvals"),
        ("defaults: {environments: {qa: {}}}", "<root>"),
        ("defaults: {environments: {staging: {colour: blue}}}", "defaults.environments.staging.colour"),
        ("version: 2", "version"),
    ],
)
def test_invalid_policies_name_the_field(text, field):
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, source="p.yaml")
    assert info.value.details["field"] == field
    assert str(info.value).startswith("p.yaml: invalid policy at")


def test_yaml_syntax_error_and_missing_file(tmp_path):
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy_text("a: [", source="p.yaml")
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "missing.yaml")
    with pytest.raises(PolicyError, match="mapping"):
        load_policy_text("- 1\n- 2")


def test_schema_is_json_schema():
    schema = policy_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "environments" in schema["properties"]
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
