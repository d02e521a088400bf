"""Canary promotions through the message bus, on in-memory fakes (packages on disk)."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelpilot.adapters.local.artifacts import FolderArtifactStore
from modelpilot.domain.commands import AdvanceCanaries, ChangeCanary, PromoteModel, RegisterModel, RollbackModel
from modelpilot.exceptions import ConcurrencyConflict, Conflict, InvalidInput, NotAuthorized, NotFound, PolicyError
from modelpilot.policy import load_policy_text
from modelpilot.testing import InMemoryMetricsSource, RecordingTrafficRouter, fake_bus

POLICY = """
environments: [dev, prod]
roles:
  - {{role: promoter, members: ["alice", "carol"], environments: [dev, prod]}}
defaults:
  environments:
    prod:
      canary:
        steps: [10, 50, 100]
        interval: 10m
        min_samples: 100
        failure_limit: {limit}
        analysis:
          - {{name: error-ratio, threshold: 0.02}}
"""
TICK = AdvanceCanaries(actor="system:scheduler")


def make_bus(tmp_path, *, limit: int = 0, routers=None):
    source = InMemoryMetricsSource()
    bus = fake_bus(
        load_policy_text(POLICY.format(limit=limit)),
        artifacts=FolderArtifactStore(),
        data_root=str(tmp_path / "data"),
        metrics_sources={"local": source},
        traffic_routers=routers if routers is not None else [],
    )
    return bus, source


def promote(bus, env, version, actor="alice", **kw):
    return bus.handle(PromoteModel(model="churn", environment=env, actor=actor, version=version, **kw))


def change(bus, action, actor="carol", **kw):
    return bus.handle(ChangeCanary(model="churn", environment="prod", action=action, actor=actor, **kw))


def serve(bus, source, version, *, requests=1000, errors=0):
    """One minute of traffic of ``version`` at the fake clock's current time."""
    source.record("requests", bus.services.clock(), good=requests - errors, total=requests, version=version)


@pytest.fixture
def canary_bus(tmp_path, make_package):
    """v1 in prod (ordinary move: nothing to compare with), v2 registered and in dev."""
    return _setup(tmp_path, make_package)


def _setup(tmp_path, make_package, **kw):
    bus, source = make_bus(tmp_path, **kw)
    for auc in (0.85, 0.9):
        bus.handle(RegisterModel(package_uri=str(make_package(auc=auc)), actor="alice"))
    assert promote(bus, "dev", 1).status == "promoted"
    assert promote(bus, "prod", 1).status == "promoted"
    assert promote(bus, "dev", 2).status == "promoted"
    return bus, source


def start(bus):
    outcome = promote(bus, "prod", 2)
    assert outcome.status == "canary_started", outcome.message
    return outcome


def healthy_step(bus, source, minutes=10, *, errors=0):
    for _ in range(minutes):
        serve(bus, source, 1)
        serve(bus, source, 2, errors=errors)
        bus.services.clock.advance(60)
    return bus.handle(TICK)


def canary(bus):
    return bus.services.registry.get_canary("churn", "prod")


def actions(bus):
    return [r.action for r in bus.services.registry.audit_records("churn")]


# -- start ---------------------------------------------------------------------------
def test_promotion_into_a_canary_environment_starts_a_canary_and_keeps_the_alias(canary_bus):
    bus, _ = canary_bus
    outcome = start(bus)
    assert bus.services.registry.get_alias("churn", "prod").version == 1
    c = canary(bus)
    assert (c.stable_version, c.candidate_version, c.weight, c.step, c.state, c.revision) == (1, 2, 10, 0, "running", 1)
    assert outcome.data["canary"]["weight"] == 10
    assert actions(bus)[-1] == "canary_start"
    assert bus.services.publisher.names()[-1] == "CanaryStarted"


def test_a_second_canary_while_one_is_active_is_a_conflict_and_a_duplicate_is_unchanged(canary_bus, make_package):
    bus, _ = canary_bus
    start(bus)
    assert promote(bus, "prod", 2).status == "unchanged"
    bus.handle(RegisterModel(package_uri=str(make_package(auc=0.95)), actor="alice"))
    assert promote(bus, "dev", 3).status == "promoted"
    with pytest.raises(Conflict, match="abort or promote it"):
        promote(bus, "prod", 3)
    assert canary(bus).revision == 1


# -- the tick ------------------------------------------------------------------------
def test_tick_before_the_interval_changes_nothing(canary_bus):
    bus, source = canary_bus
    start(bus)
    before = len(actions(bus))
    outcome = healthy_step(bus, source, minutes=5)
    assert outcome.status == "unchanged"
    assert len(actions(bus)) == before and canary(bus).revision == 1


def test_healthy_steps_advance_then_promote_through_an_ordinary_alias_move(canary_bus):
    bus, source = canary_bus
    start(bus)
    first = healthy_step(bus, source)
    assert first.status == "checked"
    assert (canary(bus).weight, canary(bus).step) == (50, 1)
    second = healthy_step(bus, source)
    assert canary(bus).state == "promoted" and canary(bus).weight == 100
    alias = bus.services.registry.get_alias("churn", "prod")
    assert alias.version == 2
    assert bus.services.registry.alias_history("churn", "prod")[-1].action == "promote"
    names = [e.name for e in second.events]
    assert names == ["ModelPromoted", "CanaryPromoted"]
    assert actions(bus)[-3:] == ["canary_advance", "promote", "canary_promote"]
    published = bus.services.publisher.names()
    assert published.count("ModelPromoted") == 4 and "CanaryAdvanced" in published


def test_duplicate_ticks_change_nothing(canary_bus):
    bus, source = canary_bus
    start(bus)
    healthy_step(bus, source)
    after_first = (canary(bus), len(actions(bus)))
    again = bus.handle(TICK)
    assert again.status == "unchanged"
    assert (canary(bus), len(actions(bus))) == after_first


def test_inconclusive_analysis_holds_without_failing_or_advancing(canary_bus):
    bus, source = canary_bus
    start(bus)
    serve(bus, source, 1, requests=50)
    serve(bus, source, 2, requests=50, errors=50)  # terrible, but too few requests to judge
    bus.services.clock.advance(600)
    outcome = bus.handle(TICK)
    c = canary(bus)
    assert (c.state, c.weight, c.failures) == ("running", 10, 0)
    held = outcome.data["canaries"][0]
    assert held["status"] == "held"
    assert held["analysis"]["passed"] is None
    assert held["analysis"]["comparisons"][0]["samples"] == 50
    assert actions(bus)[-1] == "canary_analysis"
    # the next analysis is an interval later, over the whole step so far: now enough samples
    assert bus.handle(TICK).status == "unchanged"
    outcome = healthy_step(bus, source)
    assert canary(bus).weight == 50, outcome.message


def test_error_ratio_above_threshold_aborts_with_the_evidence(canary_bus):
    bus, source = canary_bus
    start(bus)
    outcome = healthy_step(bus, source, errors=100)  # 10 % errors against 0 %
    c = canary(bus)
    assert (c.state, c.weight) == ("aborted", 0)
    assert bus.services.registry.get_alias("churn", "prod").version == 1
    record = bus.services.registry.audit_records("churn")[-1]
    assert record.action == "canary_abort"
    comparison = record.evidence["analysis"]["comparisons"][0]
    assert comparison["candidate"] == pytest.approx(0.1) and comparison["stable"] == 0.0
    assert comparison["threshold"] == 0.02 and comparison["samples"] == 10000 and comparison["passed"] is False
    assert [e.name for e in outcome.events] == ["CanaryAborted"]
    assert any("CanaryAborted" in subject for subject, *_ in bus.services.notifier.sent)


def test_failures_up_to_the_limit_are_tolerated_then_abort(tmp_path, make_package):
    bus, source = _setup(tmp_path, make_package, limit=1)
    start(bus)
    healthy_step(bus, source, errors=100)
    c = canary(bus)
    assert (c.state, c.failures, c.weight) == ("running", 1, 10)
    assert actions(bus)[-1] == "canary_analysis"
    healthy_step(bus, source, errors=100)
    assert canary(bus).state == "aborted"
    assert "limit 1" in canary(bus).reason


def test_passed_analysis_resets_failures_on_the_next_step(tmp_path, make_package):
    bus, source = _setup(tmp_path, make_package, limit=1)
    start(bus)
    healthy_step(bus, source, errors=100)
    healthy_step(bus, source, minutes=60)  # the step's whole window now dilutes the errors below the threshold
    assert (canary(bus).weight, canary(bus).failures) == (50, 0)


# -- operators -------------------------------------------------------------------------
def test_pause_stops_the_tick_and_resume_continues(canary_bus):
    bus, source = canary_bus
    start(bus)
    assert change(bus, "pause", reason="looking at logs").status == "paused"
    assert healthy_step(bus, source).status == "unchanged"
    assert canary(bus).weight == 10 and canary(bus).state == "paused"
    assert change(bus, "pause").status == "unchanged"  # a duplicated request
    assert change(bus, "resume").status == "resumed"
    assert bus.handle(TICK).status == "checked"
    assert canary(bus).weight == 50
    assert [a for a in actions(bus) if a.startswith("canary_")][1:3] == ["canary_pause", "canary_resume"]


def test_operator_abort_during_a_step(canary_bus):
    bus, source = canary_bus
    start(bus)
    healthy_step(bus, source, minutes=3)
    outcome = change(bus, "abort", reason="bad feeling", expected_revision=1)
    assert outcome.status == "aborted"
    assert (canary(bus).state, canary(bus).weight, canary(bus).reason) == ("aborted", 0, "bad feeling")
    assert change(bus, "abort").status == "unchanged"
    with pytest.raises(Conflict, match="already ended"):
        change(bus, "resume")


def test_operator_promote_moves_the_alias_now(canary_bus):
    bus, _ = canary_bus
    start(bus)
    outcome = change(bus, "promote")
    assert outcome.status == "promoted"
    assert bus.services.registry.get_alias("churn", "prod").version == 2
    assert canary(bus).state == "promoted"


def test_stale_expected_revision_is_a_concurrency_conflict(canary_bus):
    bus, _ = canary_bus
    start(bus)
    change(bus, "pause", expected_revision=1)
    with pytest.raises(ConcurrencyConflict, match="revision 2, not 1"):
        change(bus, "abort", expected_revision=1)
    assert canary(bus).state == "paused"


def _abort_first(bus, method):
    """Make the registry's next ``method`` call lose to an operator's abort that commits just before it."""
    registry = bus.services.registry
    real = getattr(registry, method)
    calls = []

    def racing(*args, **kwargs):
        if not calls:
            calls.append(1)
            current = canary(bus)
            aborted = current.evolve(at=bus.services.clock(), by="dave", state="aborted", weight=0, reason="dave")
            registry.save_canary(aborted, expected_revision=current.revision, audit=_entry("canary_abort"))
        return real(*args, **kwargs)

    setattr(registry, method, racing)
    return calls


def _entry(action):
    from tests.support.builders import entry

    return entry(action=action, environment="prod")


@pytest.mark.parametrize("expected", [1, None])
def test_a_promotion_that_loses_to_an_abort_leaves_the_alias_on_the_stable_version(canary_bus, expected):
    bus, _ = canary_bus
    start(bus)
    assert _abort_first(bus, "move_alias") is not None
    error = ConcurrencyConflict if expected else Conflict
    with pytest.raises(error, match="changed since you looked" if expected else "already ended"):
        change(bus, "promote", expected_revision=expected)
    assert bus.services.registry.get_alias("churn", "prod").version == 1
    assert (canary(bus).state, canary(bus).revision) == ("aborted", 2)
    assert "canary_promote" not in actions(bus)
    assert actions(bus).count("promote") == 3  # dev 1, prod 1, dev 2: no move to v2 in prod


def test_a_change_that_loses_its_compare_and_set_says_the_canary_changed_since_you_looked(canary_bus):
    bus, _ = canary_bus
    start(bus)
    _abort_first(bus, "save_canary")
    with pytest.raises(ConcurrencyConflict, match="at revision 2, not 1: it changed since you looked"):
        change(bus, "pause", expected_revision=1)
    assert canary(bus).state == "aborted"


def test_operator_actions_need_the_promoter_role_and_denials_are_audited(canary_bus):
    bus, _ = canary_bus
    start(bus)
    with pytest.raises(NotAuthorized):
        change(bus, "abort", actor="mallory")
    record = bus.services.registry.audit_records("churn")[-1]
    assert (record.action, record.actor, record.evidence["attempted"]) == ("deny", "mallory", "promote")
    assert canary(bus).state == "running"


def test_no_canary_is_not_found(canary_bus):
    bus, _ = canary_bus
    with pytest.raises(NotFound, match="no canary"):
        change(bus, "pause")


def test_rollback_during_a_canary_aborts_it(canary_bus, make_package):
    bus, _ = canary_bus
    start(bus)
    change(bus, "promote")
    bus.handle(RegisterModel(package_uri=str(make_package(auc=0.95)), actor="alice"))
    promote(bus, "dev", 3)
    start_v3 = promote(bus, "prod", 3)
    assert start_v3.status == "canary_started" and canary(bus).stable_version == 2
    outcome = bus.handle(RollbackModel(model="churn", environment="prod", actor="alice", reason="incident"))
    assert outcome.status == "rolled_back" and outcome.data["version"] == 1
    assert (canary(bus).state, canary(bus).candidate_version) == ("aborted", 3)
    assert [e.name for e in outcome.events] == ["ModelRolledBack", "CanaryAborted"]
    manifest = json.loads(bus.services.artifacts.read_bytes(outcome.data["manifest"]))
    assert manifest["weights"] == {"1": 100} and manifest["alias"]["version"] == 1 and manifest["canary"] is None


# -- manifest and routers ----------------------------------------------------------------
def test_serving_manifest_names_both_versions_with_their_registered_digests(canary_bus):
    bus, _ = canary_bus
    start(bus)
    path = bus.services.artifacts.join(bus.services.data_root, "serving", "churn", "prod.json")
    manifest = json.loads(bus.services.artifacts.read_bytes(path))
    assert manifest["weights"] == {"1": 90, "2": 10}
    assert manifest["canary"]["revision"] == 1 and manifest["alias"]["version"] == 1
    for entry in manifest["versions"]:
        version = bus.services.registry.get_version("churn", entry["version"])
        assert entry["manifest_digest"] == version.manifest_digest
        for artifact in entry["artifacts"]:
            content = bus.services.artifacts.read_bytes(artifact["uri"])
            assert hashlib.sha256(content).hexdigest() == artifact["sha256"]
    change(bus, "abort")
    manifest = json.loads(bus.services.artifacts.read_bytes(path))
    assert manifest["weights"] == {"1": 100} and manifest["canary"]["state"] == "aborted"


def test_ordinary_promotion_writes_the_manifest(canary_bus):
    bus, _ = canary_bus
    path = bus.services.artifacts.join(bus.services.data_root, "serving", "churn", "dev.json")
    manifest = json.loads(bus.services.artifacts.read_bytes(path))
    assert manifest["weights"] == {"2": 100} and manifest["canary"] is None


def test_a_router_that_fails_once_is_repaired_by_the_next_tick(tmp_path, make_package):
    router = RecordingTrafficRouter()
    bus, _ = _setup(tmp_path, make_package, routers=[router])
    router.applied.clear()
    router.fail_times = 1
    outcome = start(bus)
    assert canary(bus).state == "running"  # the state is saved whatever the router did
    assert outcome.data["routing"]["failed"] and router.current is None
    bus.handle(TICK)  # nothing due: the split is applied again
    assert router.current is not None and router.current.weights() == {1: 90, 2: 10}


@pytest.mark.parametrize(
    ("action", "revision", "message"),
    [
        ("restart", None, "unknown canary action"),
        ("pause", 0, "expected revision"),
        ("pause", True, "expected revision"),
    ],
)
def test_bad_operator_input_is_refused_and_changes_nothing(canary_bus, action, revision, message):
    bus, _ = canary_bus
    start(bus)
    with pytest.raises(InvalidInput, match=message):
        change(bus, action, expected_revision=revision)
    assert canary(bus).revision == 1


def test_canary_events_go_through_the_outbox_once_with_ids(canary_bus):
    bus, source = canary_bus
    start(bus)
    healthy_step(bus, source)
    change(bus, "pause")
    change(bus, "abort", reason="enough")
    canary_events = [e for e in bus.services.publisher.events if e.name.startswith("Canary")]
    assert [e.name for e in canary_events] == ["CanaryStarted", "CanaryAdvanced", "CanaryChanged", "CanaryAborted"]
    assert all(e.event_id and e.event_id.startswith("churn#") for e in canary_events)
    assert len({e.event_id for e in canary_events}) == 4
    aborted = canary_events[-1].to_dict()
    assert (aborted["stable_version"], aborted["candidate_version"], aborted["weight"], aborted["reason"]) == (
        1,
        2,
        0,
        "enough",
    )
    assert canary_events[2].action == "pause"


def test_a_default_canary_naming_an_slo_the_model_lacks_refuses_the_promotion(tmp_path, make_package):
    policy = load_policy_text(
        """
environments: [dev, prod]
defaults:
  environments:
    prod:
      canary: {steps: [10, 100], interval: 10m, analysis: [{name: lat, slo: latency, threshold: 0.02}]}
models:
  other:
    slos:
      - {name: latency, environment: prod, objective: 0.99,
         sli: {kind: ratio, source: local, good: {query: requests.fast}, total: {query: requests}}}
"""
    )
    bus = fake_bus(policy, artifacts=FolderArtifactStore(), data_root=str(tmp_path / "data"))
    for auc in (0.85, 0.9):
        bus.handle(RegisterModel(package_uri=str(make_package(auc=auc)), actor="alice"))
    promote(bus, "dev", 1)
    promote(bus, "prod", 1)
    promote(bus, "dev", 2)
    with pytest.raises(PolicyError, match="does not define for prod"):
        promote(bus, "prod", 2)
    assert canary(bus) is None and bus.services.registry.get_alias("churn", "prod").version == 1


def test_the_tick_sweeps_the_outbox_like_the_other_timers(canary_bus):
    bus, _ = canary_bus
    registry = bus.services.registry
    start(bus)
    registry.watermarks["churn"] = 1  # a crash after commit left the later records unpublished
    bus.services.publisher.events.clear()
    bus.handle(TICK)  # nothing due, but the sweep publishes what was left behind
    assert "CanaryStarted" in bus.services.publisher.names()
    assert registry.outbox_watermark("churn") == registry.audit_head("churn").seq


def test_without_a_serving_root_no_manifest_is_written_and_the_canary_still_runs(tmp_path, make_package):
    router = RecordingTrafficRouter()
    bus, source = make_bus(tmp_path, routers=[router])
    bus.services.serving_root = None
    for auc in (0.85, 0.9):
        bus.handle(RegisterModel(package_uri=str(make_package(auc=auc)), actor="alice"))
    promote(bus, "dev", 1)
    promote(bus, "prod", 1)
    promote(bus, "dev", 2)
    outcome = start(bus)
    assert outcome.data["manifest"] is None and "MODELPILOT_SERVING_ROOT" in outcome.data["manifest_skipped"]
    assert not (tmp_path / "data").exists()
    assert router.current.weights() == {1: 90, 2: 10}
    healthy_step(bus, source)
    assert canary(bus).weight == 50


# -- policy changes while a canary runs ------------------------------------------------
def _swap_policy(bus, text):
    policy = load_policy_text(text)
    bus.services.policy_loader = lambda: policy


def test_the_canary_keeps_the_steps_it_started_with_when_the_policy_changes(canary_bus):
    bus, source = canary_bus
    start(bus)
    assert canary(bus).steps == (10, 50, 100)
    assert bus.services.registry.audit_records("churn")[-1].evidence["steps"] == [10, 50, 100]
    # the new steps would put step 1 at 20 % and add a step; the running canary ignores them
    _swap_policy(bus, POLICY.format(limit=0).replace("[10, 50, 100]", "[5, 20, 40, 80, 100]"))
    healthy_step(bus, source)
    assert (canary(bus).step, canary(bus).weight) == (1, 50)
    assert canary(bus).steps == (10, 50, 100)
    from modelpilot.service.queries import canary_status

    assert canary_status(bus.services.registry, bus.services.policy, "churn", "prod")[0]["steps"] == [10, 50, 100]
    healthy_step(bus, source)
    assert canary(bus).state == "promoted"
    assert bus.services.registry.get_alias("churn", "prod").version == 2


def test_a_record_without_steps_falls_back_to_the_policy(canary_bus):
    bus, _ = canary_bus
    start(bus)
    from modelpilot.domain.canary import Canary

    old = canary(bus).to_dict()
    del old["steps"]  # a canary saved before the steps were recorded
    assert Canary.from_dict(old).steps == ()
    assert Canary.from_dict(old).step_weights([10, 50, 100]) == (10, 50, 100)


@pytest.mark.parametrize("action", ["promote", "abort"])
def test_a_policy_without_the_canary_block_holds_the_canary_and_operators_can_still_end_it(canary_bus, action):
    bus, source = canary_bus
    start(bus)
    _swap_policy(bus, POLICY.format(limit=0).split("defaults:")[0])
    held = healthy_step(bus, source)
    assert held.status == "unchanged" and "no canary policy" in held.message
    assert (canary(bus).state, canary(bus).revision) == ("running", 1)
    outcome = change(bus, action)
    assert outcome.status == ("promoted" if action == "promote" else "aborted")
    want = 2 if action == "promote" else 1
    assert bus.services.registry.get_alias("churn", "prod").version == want
    assert healthy_step(bus, source).status == "unchanged"


def test_a_drift_metric_of_a_candidate_without_reference_data_is_inconclusive_and_holds(tmp_path, make_package):
    bus, source = _setup(tmp_path, make_package)
    _swap_policy(
        bus,
        POLICY.format(limit=0).replace(
            "- {name: error-ratio, threshold: 0.02}",
            "- {name: error-ratio, threshold: 0.02}\n          - {name: drift, kind: drift}",
        ),
    )
    start(bus)
    outcome = healthy_step(bus, source)
    comparisons = {c["metric"]: c for c in outcome.data["canaries"][0]["analysis"]["comparisons"]}
    assert comparisons["error-ratio"]["passed"] is True
    assert comparisons["drift"]["passed"] is None and "has no reference data" in comparisons["drift"]["detail"]
    assert (canary(bus).state, canary(bus).weight, canary(bus).failures) == ("running", 10, 0)
