"""The policy file (``modelpilot.yaml``) as typed, strict models.

* :mod:`.base` — the strict base model of every block;
* :mod:`.gates` — the promotion gates of an environment;
* :mod:`.drift`, :mod:`.sli`, :mod:`.slo` — monitoring: drift rules, SLIs, SLOs and the rollback policy;
* :mod:`.document` — the whole file: environments, defaults, per-model overlays, parsing and the JSON Schema.
"""

from __future__ import annotations

from modelpilot.policy.document import (
    ModelPolicy,
    Policy,
    default_policy,
    load_policy,
    load_policy_text,
    parse_policy,
    policy_schema,
)
from modelpilot.policy.gates import EnvironmentGates, MetricThreshold, RegressionRule

__all__ = [
    "EnvironmentGates",
    "MetricThreshold",
    "ModelPolicy",
    "Policy",
    "RegressionRule",
    "default_policy",
    "load_policy",
    "load_policy_text",
    "parse_policy",
    "policy_schema",
]
