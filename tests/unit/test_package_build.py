"""``modelpilot package build`` and ``package check``: reproducible manifests, lineage from CI, typed errors."""

from __future__ import annotations

import json
import os
import time

import pytest

from modelpilot.cli.app import main
from modelpilot.domain.model import Lineage, Manifest, canonical_json, sha256_hex
from modelpilot.exceptions import AlreadyExists, DigestMismatch, InvalidInput, ManifestMissing, ManifestSchemaError
from modelpilot.package.builder import build_package
from modelpilot.package.check import verify_folder
from modelpilot.package.lineage import ci_lineage
from modelpilot.package.manifest import manifest_digest, parse_manifest

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SHA": "3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f7a8b9c0d",
    "GITHUB_REPOSITORY": "acme/churn-model",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_RUN_ID": "7301452918",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_ACTOR": "alice",
}


def _inputs(tmp_path, order=("b.bin", "a/model.json")):
    root = tmp_path / "pkg"
    (root / "a").mkdir(parents=True, exist_ok=True)
    contents = {"b.bin": b"\x00\x01weights", "a/model.json": b'{"w": [1, 2]}'}
    for name in order:
        (root / name).write_bytes(contents[name])
    (root / ".DS_Store").write_bytes(b"finder")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"auc": 0.91, "latency_p95_ms": 12}', encoding="utf-8")
    features = tmp_path / "features.json"
    features.write_text('{"features": [{"name": "x", "type": "numeric", "minimum": 0}]}', encoding="utf-8")
    reference = tmp_path / "reference.csv"
    reference.write_text("x\n1\n2\n", encoding="utf-8")
    return root, metrics, features, reference


def _build(root, metrics, features, reference, lineage=None):
    return build_package(
        root, name="churn", metrics=metrics, features=features, reference=str(reference), lineage=lineage
    )


def test_the_same_inputs_give_the_same_manifest_bytes_and_digest(tmp_path):
    one = _build(*_inputs(tmp_path / "one"), lineage=ci_lineage(GITHUB_ENV))
    other_inputs = _inputs(tmp_path / "two", order=("a/model.json", "b.bin"))  # other creation order, other mtimes
    os.utime(other_inputs[0] / "b.bin", (time.time() - 86400, time.time() - 86400))
    two = _build(*other_inputs, lineage=ci_lineage({**GITHUB_ENV, "GITHUB_RUN_ATTEMPT": "2"}))  # a re-run
    assert one.manifest_path.read_bytes() == two.manifest_path.read_bytes()
    assert one.manifest_digest == two.manifest_digest
    again = _build(*_inputs(tmp_path / "one"), lineage=ci_lineage(GITHUB_ENV))  # rebuilding in place
    assert again.manifest_digest == one.manifest_digest
    assert [a["path"] for a in one.document["artifacts"]] == ["a/model.json", "b.bin", "reference/reference.csv"]
    assert one.manifest_digest == manifest_digest(parse_manifest(one.manifest_path.read_bytes()))


def test_any_change_of_content_metrics_or_commit_changes_the_digest(tmp_path):
    base = _build(*_inputs(tmp_path / "base"), lineage=ci_lineage(GITHUB_ENV))
    root, metrics, features, reference = _inputs(tmp_path / "bytes")
    (root / "b.bin").write_bytes(b"\x00\x02weights")
    assert _build(root, metrics, features, reference, ci_lineage(GITHUB_ENV)).manifest_digest != base.manifest_digest
    root, metrics, features, reference = _inputs(tmp_path / "metrics")
    metrics.write_text('{"auc": 0.92, "latency_p95_ms": 12}', encoding="utf-8")
    assert _build(root, metrics, features, reference, ci_lineage(GITHUB_ENV)).manifest_digest != base.manifest_digest
    commit = ci_lineage({**GITHUB_ENV, "GITHUB_SHA": "0" * 40})
    assert _build(*_inputs(tmp_path / "commit"), lineage=commit).manifest_digest != base.manifest_digest


def test_lineage_from_each_ci_system():
    assert ci_lineage(GITHUB_ENV) == {
        "code_revision": GITHUB_ENV["GITHUB_SHA"],
        "repository": "https://github.com/acme/churn-model",
        "run_id": "github:7301452918",
        "run_url": "https://github.com/acme/churn-model/actions/runs/7301452918",
        "built_by": "github:alice",
    }
    azure = {
        "TF_BUILD": "True",
        "BUILD_SOURCEVERSION": "abc123",
        "BUILD_REPOSITORY_URI": "https://dev.azure.com/acme/ml/_git/churn",
        "BUILD_BUILDID": "981",
        "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
        "SYSTEM_TEAMPROJECT": "ml",
        "BUILD_REQUESTEDFOREMAIL": "alice@acme.example",
    }
    assert ci_lineage(azure)["run_url"] == "https://dev.azure.com/acme/ml/_build/results?buildId=981"
    assert ci_lineage(azure)["built_by"] == "azure-devops:alice@acme.example"
    gitlab = {"GITLAB_CI": "true", "CI_COMMIT_SHA": "def", "CI_PIPELINE_ID": "55", "GITLAB_USER_LOGIN": "bob"}
    assert ci_lineage(gitlab) == {"code_revision": "def", "run_id": "gitlab:55", "built_by": "gitlab:bob"}
    assert ci_lineage({"GITHUB_SHA": "abc"}) == {}  # not inside GitHub Actions


def test_manifests_without_the_new_lineage_fields_keep_their_digest():
    manifest = Manifest("churn", "custom", {"auc": 0.9}, Lineage(run_id="r1"), (), ())
    old_document = {
        "name": "churn",
        "framework": "custom",
        "metrics": {"auc": 0.9},
        "lineage": {"run_id": "r1", "code_revision": None, "training_data_uri": None},
        "features": [],
        "artifacts": [],
        "reference_data_uri": None,
        "description": None,
        "tags": {},
    }
    assert manifest_digest(manifest) == sha256_hex(canonical_json(old_document))
    with_ci = Manifest("churn", "custom", {"auc": 0.9}, Lineage(run_id="r1", run_url="https://ci/1"), (), ())
    assert manifest_digest(with_ci) != manifest_digest(manifest)


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ('{"auc": "high"}', "not a number"),
        ('{"auc": true}', "not a number"),
        ('{"auc": {"mean": 0.9}}', "not a number"),
        ('{"auc": NaN}', "finite"),
        ("[0.9]", "JSON object"),
        ("{auc: 0.9", "not valid JSON"),
    ],
)
def test_bad_metrics_are_typed_errors_and_write_nothing(tmp_path, metrics, message):
    root, metrics_file, features, reference = _inputs(tmp_path)
    metrics_file.write_text(metrics, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        _build(root, metrics_file, features, reference)
    assert not (root / "modelpilot.json").exists()


def test_invalid_features_or_name_fail_schema_validation_before_writing(tmp_path):
    root, metrics, features, reference = _inputs(tmp_path)
    features.write_text('[{"name": "x", "type": "numeric", "allowed_values": ["a"]}]', encoding="utf-8")
    with pytest.raises(ManifestSchemaError, match="features"):
        _build(root, metrics, features, reference)
    with pytest.raises(ManifestSchemaError, match="name"):
        build_package(root, name="Churn Model", metrics=metrics)
    assert not (root / "modelpilot.json").exists()


def test_symlinks_are_refused_and_excluded_files_left_out(tmp_path):
    root, metrics, _features, _reference = _inputs(tmp_path)
    (root / "notes.tmp").write_text("scratch", encoding="utf-8")
    built = build_package(root, name="churn", metrics=metrics, exclude=("*.tmp",))
    assert [a["path"] for a in built.document["artifacts"]] == ["a/model.json", "b.bin"]
    (root / "secret").symlink_to(tmp_path / "metrics.json")
    with pytest.raises(InvalidInput, match="symbolic link"):
        build_package(root, name="churn", metrics=metrics)


def test_a_reference_file_is_copied_once_and_never_overwritten(tmp_path):
    root, metrics, features, reference = _inputs(tmp_path)
    _build(root, metrics, features, reference)
    assert (root / "reference" / "reference.csv").read_bytes() == reference.read_bytes()
    reference.write_text("x\n3\n", encoding="utf-8")
    with pytest.raises(AlreadyExists):
        _build(root, metrics, features, reference)
    uri = build_package(root, name="churn", metrics=metrics, reference="s3://data/churn/ref.parquet")
    assert uri.document["reference_data_uri"] == "s3://data/churn/ref.parquet"


def test_verify_folder_finds_tampering(tmp_path):
    root, metrics, features, reference = _inputs(tmp_path)
    _build(root, metrics, features, reference)
    assert verify_folder(root).manifest.name == "churn"
    (root / "b.bin").write_bytes(b"\x00\x01weighTs")
    with pytest.raises(DigestMismatch, match=r"b\.bin"):
        verify_folder(root)
    with pytest.raises(ManifestMissing, match="package build"):
        verify_folder(tmp_path / "nowhere")


def test_cli_build_writes_outputs_for_the_next_steps(tmp_path, monkeypatch, capsys):
    root, metrics, features, _reference = _inputs(tmp_path)
    output, summary = tmp_path / "out.txt", tmp_path / "summary.md"
    for name, value in {**GITHUB_ENV, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}.items():
        monkeypatch.setenv(name, value)
    code = main(
        ["package", "build", str(root), "--name", "churn", "--metrics", str(metrics), "--features", str(features)]
    )
    assert code == 0
    digest = manifest_digest(parse_manifest((root / "modelpilot.json").read_bytes()))
    assert f"manifest_digest={digest}\n" in output.read_text(encoding="utf-8")
    assert "built_by=github:alice" in capsys.readouterr().out
    assert json.loads((root / "modelpilot.json").read_text())["lineage"]["code_revision"] == GITHUB_ENV["GITHUB_SHA"]


def test_cli_check_dry_runs_thresholds_and_no_regression_against_the_incumbent(tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "environments: [dev, prod]\n"
        "defaults:\n  environments:\n"
        "    dev: {thresholds: ['auc >= 0.8']}\n"
        "    prod: {no_regression: [{metric: auc}], approvals: 1}\n",
        encoding="utf-8",
    )
    common = ["--home", str(home), "--policy", str(policy), "--actor", "user:ops"]
    for name in ("GITHUB_ACTIONS", "MODELPILOT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    root, metrics, features, reference = _inputs(tmp_path / "v1")
    _build(root, metrics, features, reference)
    assert main(["register", str(root), "--promote", *common]) == 0
    assert main(["promote", "churn", "--env", "prod", "--version", "1", *common]) == 3  # needs an approval
    assert (
        main(
            [
                "approve",
                "churn",
                "1",
                "--env",
                "prod",
                "--actor",
                "user:bob",
                "--home",
                str(home),
                "--policy",
                str(policy),
            ]
        )
        == 0
    )
    assert main(["promote", "churn", "--env", "prod", "--version", "1", *common]) == 0
    capsys.readouterr()

    worse = tmp_path / "v2"
    root2, metrics2, features2, reference2 = _inputs(worse)
    metrics2.write_text('{"auc": 0.85}', encoding="utf-8")
    _build(root2, metrics2, features2, reference2)
    code = main(["package", "check", str(root2), "--env", "dev", "--env", "prod", *common])
    out = capsys.readouterr().out
    assert code == 3
    assert "[PASS] threshold:auc: auc=0.85 meets auc >= 0.8" in out
    assert "churn -> prod (incumbent v1):" in out and "[FAIL] no_regression:auc" in out
    assert "[SKIP] approvals" in out
    offline = main(["package", "check", str(root2), "--env", "prod", "--offline", "--policy", str(policy)])
    assert offline == 0 and "no-regression gates skipped" in capsys.readouterr().out
    assert main(["package", "check", str(root2), "--env", "qa", *common]) == 2  # not in the policy
