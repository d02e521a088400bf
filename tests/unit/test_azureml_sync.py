"""Azure ML write-back on the fakes: the policy block, which versions get which tag, failures never undo.

What this proves: the ``azureml`` block's validation and defaults; that only versions registered from Azure
ML (``source == "azureml"``) are written, only for the environments the block names, and not at all with
``write_back: false`` or without the block; the status each event writes. What it cannot: the requests Azure
ML receives (tests/integration/azure/test_azureml_sync.py, against a recording stand-in).
"""

from __future__ import annotations

import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import PromoteModel, RegisterModel, RollbackModel
from modelpilot.exceptions import PolicyError
from modelpilot.policy import load_policy_text
from modelpilot.testing import RecordingLifecycleSync, fake_bus

ID = "azureml:mlw-modelpilot/churn:{}"

POLICY = """
environments: [dev, staging, prod]
models:
  churn:
    {block}
"""


def make_bus(block: str = "azureml: {write_back: true}"):
    return fake_bus(
        load_policy_text(POLICY.replace("{block}", block)),
        artifacts=FolderArtifactStore(),
        lifecycle_sync={"azureml": RecordingLifecycleSync()},
    )


def register(bus, pkg, n, source="azureml"):
    return bus.handle(
        RegisterModel(
            package_uri=str(pkg), actor="system:azureml", source=source, external_id=ID.format(n), trigger=ID.format(n)
        )
    )


def tags(bus):
    return [(u.external_id[-1], u.stage, u.stage_status) for u in bus.services.lifecycle_sync["azureml"].updates]


def promote(bus, env, version):
    return bus.handle(PromoteModel(model="churn", environment=env, actor="alice", version=version))


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ("azureml: {environments: [live]}", "not in"),
        ("azureml: {write_bak: true}", "write_bak"),
        ("azureml: {write_back: maybe}", "write_back"),
    ],
)
def test_bad_azureml_blocks_are_policy_errors_naming_the_problem(block, fragment):
    with pytest.raises(PolicyError) as err:
        load_policy_text(POLICY.replace("{block}", block))
    assert fragment in str(err.value)


def test_a_model_without_its_own_block_takes_the_defaults():
    policy = load_policy_text("defaults:\n  azureml: {environments: [prod]}\nmodels:\n  churn: {}\n")
    sync = policy.model_policy("churn").azureml
    assert sync is not None and sync.writes("prod") and not sync.writes("dev")


def test_promotion_replacement_and_rollback_write_their_statuses(make_package):
    bus = make_bus()
    register(bus, make_package("churn"), 1)
    register(bus, make_package("churn"), 2)
    promote(bus, "dev", 1)
    promote(bus, "dev", 2)
    bus.handle(RollbackModel(model="churn", environment="dev", actor="system:slo", reason="burn"))
    assert tags(bus) == [
        ("1", "dev", "promoted"),
        ("2", "dev", "promoted"),
        ("1", "dev", "replaced"),
        ("2", "dev", "rolled_back"),
        ("1", "dev", "restored"),
    ]


def test_only_the_named_environments_are_written(make_package):
    bus = make_bus("azureml: {environments: [staging]}")
    register(bus, make_package("churn"), 1)
    promote(bus, "dev", 1)
    promote(bus, "staging", 1)
    assert tags(bus) == [("1", "staging", "promoted")]


@pytest.mark.parametrize("block", ["azureml: {write_back: false}", "sagemaker: {stages: {Production: prod}}"])
def test_write_back_off_or_no_block_writes_nothing(make_package, block):
    bus = make_bus(block)
    register(bus, make_package("churn"), 1)
    assert promote(bus, "dev", 1).status == "promoted"
    assert tags(bus) == []


def test_versions_from_other_sources_are_not_written(make_package):
    bus = make_bus()
    bus.handle(RegisterModel(package_uri=str(make_package("churn")), actor="alice"))
    promote(bus, "dev", 1)
    assert tags(bus) == []
