"""The drift fan-out state machine (infra/aws/drift.asl.json): its structure, and its steps driven against moto's S3.

What is proven how:

* structure: cfn-lint validates the definition (embedded in an
  ``AWS::StepFunctions::StateMachine``) against the States Language schema, and
  the tests below check the parts the design relies on (a DISTRIBUTED Map with
  an S3 ``ItemReader``, an ``ItemBatcher``, ``MaxConcurrencyPath``,
  ``ToleratedFailurePercentagePath``, an S3 ``ResultWriter``, then the merge; the
  only substitutions are the two function ARNs; every state is reachable).
* behaviour: moto's Step Functions does not run Distributed Map states with
  Lambda children, so :func:`drive` executes this definition's own fields
  step by step: it reads the items with S3 GetObject from moto, batches them as
  ``ItemBatcher`` says, passes ``BatchInput``, calls the child handler
  (``partial_reply``) once per batch with the payload JSON-encoded, writes the
  children's outputs as ``ResultWriter`` does (manifest + ``SUCCEEDED_0.json``)
  to moto's S3, and calls the merge handler with the definition's ``Parameters``.
  The merged report equals the single pass; a retried child writes its partial
  once; a failed child within the tolerated share counts its files as corrupt.
* not proven: the Step Functions service itself (IAM, the real payload limits,
  concurrency, the exact ResultWriter file split), which only a deployed stack shows.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pytest
from cfnlint.api import ManualArgs, lint

from modelpilot.drift.builder import build_reference
from modelpilot.drift.io.readers import data_files
from modelpilot.entrypoints.aws.drift_fanout import execution_input, merge_command, partial_reply
from modelpilot.exceptions import InvalidEvent
from modelpilot.service.drift.fanout import Batch, WindowPlan, plan_batches
from modelpilot.service.drift.window import merge_window, run_partial
from modelpilot.service.messagebus import MessageBus
from modelpilot.testing import fake_services
from tests.support.aws import REPO, client, create_bucket, moto_endpoint, unique

DEFINITION = json.loads((REPO / "infra" / "aws" / "drift.asl.json").read_text())
SUBSTITUTIONS = {
    "DriftPartialFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:drift-partial",
    "DriftMergeFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:drift-merge",
}


def _substituted() -> dict[str, Any]:
    text = json.dumps(DEFINITION)
    for name, value in SUBSTITUTIONS.items():
        text = text.replace("${" + name + "}", value)
    return json.loads(text)


def _cfn_lint(definition: dict[str, Any]) -> list[str]:
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "Drift": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"Definition": definition, "RoleArn": "arn:aws:iam::123456789012:role/drift"},
            }
        },
    }
    return [str(m) for m in lint(json.dumps(template), config=ManualArgs(regions=["us-east-1"]))]


def test_the_definition_passes_cfn_lint_and_a_broken_one_does_not():
    assert _cfn_lint(_substituted()) == []
    broken = _substituted()
    del broken["States"]["ReadBatches"]["ItemProcessor"]["StartAt"]
    assert any("StartAt" in m for m in _cfn_lint(broken))


def test_the_definition_has_the_distributed_map_the_design_relies_on():
    assert set(re.findall(r"\$\{(\w+)\}", json.dumps(DEFINITION))) == set(SUBSTITUTIONS)
    states = DEFINITION["States"]
    read = states[DEFINITION["StartAt"]]
    assert read["Type"] == "Map" and read["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert read["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert read["ItemReader"]["ReaderConfig"]["InputType"] == "JSON"
    assert read["ItemBatcher"]["MaxItemsPerBatchPath"] and read["ItemBatcher"]["BatchInput"] == {"plan.$": "$.plan"}
    assert read["MaxConcurrencyPath"] == "$.max_concurrency"
    assert read["ToleratedFailurePercentagePath"] == "$.tolerated_failure_percentage"
    assert read["ResultWriter"]["Resource"] == "arn:aws:states:::s3:putObject"
    child = read["ItemProcessor"]["States"][read["ItemProcessor"]["StartAt"]]
    assert child["Parameters"]["FunctionName"] == "${DriftPartialFunctionArn}" and child["End"] is True
    merge = states[read["Next"]]
    assert merge["Parameters"]["FunctionName"] == "${DriftMergeFunctionArn}" and merge["End"] is True
    reachable, todo = set(), [DEFINITION["StartAt"]]
    while todo:
        name = todo.pop()
        reachable.add(name)
        todo.extend(n for n in [states[name].get("Next")] if n and n not in reachable)
    assert reachable == set(states)


# -- driving the definition's steps ---------------------------------------------------------------
def _path(doc: Any, path: str) -> Any:
    assert path.startswith("$"), path
    for part in [p for p in path[1:].split(".") if p]:
        doc = doc[part]
    return doc


def _params(template: Any, doc: Any) -> Any:
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _path(doc, value)
            else:
                out[key] = _params(value, doc)
        return out
    return template


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    parts = [p for p in path[1:].split(".") if p]
    out = json.loads(json.dumps(doc))
    target = out
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    return out


def drive(s3: Any, execution: dict[str, Any], functions: dict[str, Any], *, fail_children: set[int] = frozenset()):
    """Run the definition's states on ``execution`` (see the module docstring); return the last output."""
    definition = _substituted()
    arns = {SUBSTITUTIONS[k]: v for k, v in functions.items()}
    name, doc = definition["StartAt"], execution
    while True:
        state = definition["States"][name]
        if state["Type"] == "Map":
            where = _params(state["ItemReader"]["Parameters"], doc)
            items = json.loads(s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read())
            per = _path(doc, state["ItemBatcher"]["MaxItemsPerBatchPath"])
            batch_input = _params(state["ItemBatcher"]["BatchInput"], doc)
            tolerated = _path(doc, state["ToleratedFailurePercentagePath"])
            assert _path(doc, state["MaxConcurrencyPath"]) >= 1
            child_def = state["ItemProcessor"]["States"][state["ItemProcessor"]["StartAt"]]
            succeeded, failed = [], []
            for i in range(0, len(items), per):
                payload = {"BatchInput": batch_input, "Items": items[i : i + per]}
                call = _params(child_def["Parameters"], payload)
                entry = {"Input": json.dumps(payload), "Status": "SUCCEEDED"}
                if i // per in fail_children:
                    failed.append({**entry, "Status": "FAILED", "Error": "Lambda.Unknown"})
                    continue
                reply = {
                    "Payload": json.loads(
                        json.dumps(arns[call["FunctionName"]](json.loads(json.dumps(call["Payload"]))))
                    )
                }
                succeeded.append({**entry, "Output": json.dumps(_path(reply, child_def["OutputPath"]))})
            assert len(failed) * 100 <= tolerated * (len(succeeded) + len(failed)), "the Map run would fail"
            out = _params(state["ResultWriter"]["Parameters"], doc)
            files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
            for status, entries in (("SUCCEEDED", succeeded), ("FAILED", failed)):
                if entries:
                    key = f"{out['Prefix']}/run/{status}_0.json"
                    body = json.dumps(entries).encode()
                    s3.put_object(Bucket=out["Bucket"], Key=key, Body=body)
                    files[status].append({"Key": key, "Size": len(body)})
            manifest = f"{out['Prefix']}/run/manifest.json"
            body = json.dumps({"DestinationBucket": out["Bucket"], "ResultFiles": files}).encode()
            s3.put_object(Bucket=out["Bucket"], Key=manifest, Body=body)
            doc = _set(doc, state["ResultPath"], {"ResultWriterDetails": {"Bucket": out["Bucket"], "Key": manifest}})
        else:
            call = _params(state["Parameters"], doc)
            reply = {"Payload": arns[call["FunctionName"]](json.loads(json.dumps(call["Payload"])))}
            doc = _path(reply, state["OutputPath"])
        if state.get("End"):
            return doc
        name = state["Next"]


@pytest.fixture
def window(request):
    from modelpilot.adapters.aws.artifacts import S3ArtifactStore

    s3 = client("s3", moto_endpoint(request))
    bucket = create_bucket(s3, unique("drift"))
    svc = fake_services(artifacts=S3ArtifactStore(s3), data_root=f"s3://{bucket}/data")
    rng = np.random.default_rng(3)
    reference = build_reference(
        {"x": rng.normal(0, 1, 5000), "c": np.asarray(rng.choice(["a", "b", "c"], 5000), dtype=object)}, bins=100
    )
    ref_uri = svc.artifacts.write_bytes(f"s3://{bucket}/data/profiles/m/v1/reference-profile.json", reference.to_json())
    for i in range(9):
        x = rng.normal(0.8 if i % 2 else 0.0, 1, 400)
        c = rng.choice(["a", "b", "zz"], 400)
        body = "x,c\n" + "".join(f"{a:.6f},{b}\n" for a, b in zip(x, c, strict=True)) + ("bad\n" if i == 4 else "")
        s3.put_object(Bucket=bucket, Key=f"data/captures/m/e/2026/01/01/0{i % 3}/part-{i}.csv", Body=body.encode())
    files = data_files(svc.artifacts.list(f"s3://{bucket}/data/captures/m/e"))
    plan = WindowPlan(
        "m",
        "e",
        1,
        "m-e-20260101T060000-abc",
        "2026-01-01T00:00:00+00:00",
        "2026-01-01T06:00:00+00:00",
        None,
        ref_uri,
        tuple((o.uri, o.size) for o in files),
    )
    return {"s3": s3, "bucket": bucket, "svc": svc, "plan": plan, "batches": plan_batches(plan, max_bytes=10_000)}


def _features(report) -> list[dict[str, Any]]:
    return json.loads(json.dumps(report.data["features"]))


def _close(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            _close(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    else:
        assert a == b


def test_the_driven_state_machine_reports_what_the_single_pass_reports(window):
    svc, plan, batches, s3 = window["svc"], window["plan"], window["batches"], window["s3"]
    assert len(batches) >= 4
    inp = execution_input(svc, plan, batches, max_concurrency=100, tolerated_failure_percentage=0, batches_per_child=2)
    assert inp["plan"]["files"] == []  # the plan travels without its file list
    calls: list[int] = []

    def child(payload):
        calls.append(len(payload["Items"]))
        return partial_reply(svc, payload)

    out = drive(s3, inp, {"DriftPartialFunctionArn": child, "DriftMergeFunctionArn": lambda p: _merge(svc, p)})
    assert calls == [2] * (len(batches) // 2) + ([1] if len(batches) % 2 else [])
    assert out["status"] == "drift" and out["events"][0]["type"] == "DriftDetected"
    status = svc.registry.get_monitor_status("m", "e", "drift")
    assert status is not None and status.state == "alert" and status.details["report_id"] == plan.report_id
    fanned = json.loads(svc.artifacts.read_bytes(out["report_uri"]))
    single_svc = fake_services(artifacts=svc.artifacts, data_root=f"s3://{window['bucket']}/single")
    whole = Batch(0, tuple(u for u, _ in plan.files), plan.total_bytes, "all")
    single = merge_window(single_svc, plan, [whole], [run_partial(single_svc, plan, whole)])
    _close(fanned["features"], _features(single["report"]))
    assert fanned["current"]["rows"] == 3600 and fanned["current"]["corrupt_rows"] == 1
    assert (
        fanned["severity"] == single["report"].severity and out["drifted_features"] == single["report"].drifted_features
    )
    # the merge delivered twice (Lambda retry) returns the stored report and publishes nothing more
    again = drive(s3, inp, {"DriftPartialFunctionArn": child, "DriftMergeFunctionArn": lambda p: _merge(svc, p)})
    assert again["status"] == "unchanged" and again["events"] == []


def test_large_partials_go_to_s3_once_and_a_failed_child_counts_as_corrupt_files(window, monkeypatch):
    import modelpilot.entrypoints.aws.drift_fanout as fanout_edge

    svc, plan, batches, s3 = window["svc"], window["plan"], window["batches"], window["s3"]
    inp = execution_input(svc, plan, batches, max_concurrency=2, tolerated_failure_percentage=50, batches_per_child=1)
    monkeypatch.setattr(fanout_edge, "INLINE_LIMIT", 1000)  # every partial is "large"

    def child(payload):
        return partial_reply(svc, payload)

    child({"BatchInput": {"plan": inp["plan"]}, "Items": [batches[0].to_dict()]})  # batch 0 read once before: a retry
    functions = {"DriftPartialFunctionArn": child, "DriftMergeFunctionArn": lambda p: _merge(svc, p)}
    out = drive(s3, inp, functions, fail_children={1})
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=window["bucket"], Prefix="data/partials/")["Contents"]]
    stored = [k for k in keys if re.search(r"/\d{5}-[0-9a-f]{16}\.json$", k)]
    assert len(stored) == len(batches) - 1  # one object per batch read, the retry wrote no second one
    report = json.loads(svc.artifacts.read_bytes(out["report_uri"]))
    assert report["current"]["corrupt_files"] == len(batches[1].files)
    assert any("batch 1 was not read" in e for e in report["current"]["corrupt_examples"])


def test_bad_payloads_are_typed_errors_and_reads_stay_inside_the_window(window):
    svc, plan, batches = window["svc"], window["plan"], window["batches"]
    inp = execution_input(svc, plan, batches)
    with pytest.raises(InvalidEvent, match="Items"):
        partial_reply(svc, {"BatchInput": {"plan": inp["plan"]}, "Items": []})
    outside = {"Bucket": window["bucket"], "Key": "data/profiles/m/v1/reference-profile.json"}
    with pytest.raises(InvalidEvent, match="outside the window"):
        merge_command(svc, {"plan": inp["plan"], "batches": outside, "results": outside})


def _merge(svc, payload):
    outcome = MessageBus(svc, react=False).handle(merge_command(svc, payload))
    (report,) = outcome.data["reports"]
    published = svc.publisher.events[-len(outcome.events) :] if outcome.events else []
    assert [e.name for e in published] == [e.name for e in outcome.events]
    return {
        "status": outcome.status,
        **report,
        "events": [{"type": e.name, "report_id": e.report_id} for e in outcome.events],
    }
