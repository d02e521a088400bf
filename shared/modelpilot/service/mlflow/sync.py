"""MLflow aliases and tags in, ModelPilot's decisions out, without loops.

In:

* an alias of ``mlflow.aliases`` set on a version requests a promotion of that version to the alias's
  environment (the version is imported first when its ``model_version.created`` never arrived); the gates decide;
* a tag ``<mlflow.approval_tag_prefix><environment>`` records an approval by ``mlflow:<tag value>``.

Out (reactions to ``ModelPromoted``, ``PromotionBlocked``, ``ModelRolledBack``): the environment's alias in MLflow
is set to the version ModelPilot holds there (removed when that version is not MLflow's, or nothing is there), and
the versions concerned get tags ``<tag_prefix><environment>`` (``promoted``, ``replaced``, ``blocked``,
``rolled_back``, ``restored``) and ``<tag_prefix><environment>.report`` (the gate report or the rollback, JSON).
A failed write-back is notified and does not undo the decision: ``modelpilot mlflow sync`` writes it again.

No loops: before ModelPilot sets an alias it records an *echo marker* (``mlflow-echo:<model>@<alias>=<version>``)
in the idempotency store; the webhook that MLflow then sends for that alias finds the marker, consumes it and is
ignored. An alias event whose version is no longer where the alias points (a later move overtook it) is stale and
ignored too. And a promotion to the version an environment already holds changes nothing.
"""

from __future__ import annotations

import fnmatch
import json
from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.domain.commands import ApproveModel, ImportMlflowVersion, PromoteModel
from modelpilot.exceptions import InvalidEvent, ModelPilotError, NotAuthorized, NotFound
from modelpilot.service.lifecycle import approve_model, promote_model
from modelpilot.service.messagebus import Outcome
from modelpilot.service.mlflow._common import ACTOR, client, external_id, mlflow_ref, model_name, settings
from modelpilot.service.mlflow.imports import import_mlflow_version

if TYPE_CHECKING:
    from modelpilot.domain.commands import RequestMlflowPromotion, SetMlflowVersionTag, SyncMlflow
    from modelpilot.domain.events import ModelPromoted, ModelRolledBack, PromotionBlocked
    from modelpilot.ports import IdempotencyStore
    from modelpilot.service.messagebus import MessageBus, Services

__all__ = [
    "echo_key",
    "on_model_promoted",
    "on_model_rolled_back",
    "on_promotion_blocked",
    "request_mlflow_promotion",
    "set_mlflow_version_tag",
    "sync_environment",
    "sync_mlflow",
]

log = telemetry.get_logger("modelpilot.mlflow")
#: how long an echo marker waits for its webhook
ECHO_SECONDS = 3600
#: MLflow keeps model-version tag values up to 5000 characters in every store
_TAG_VALUE_LIMIT = 5000


def echo_key(mlflow_model: str, alias: str, mlflow_version: str) -> str:
    """The idempotency-store key of the marker ModelPilot leaves before it sets an alias itself."""
    return f"mlflow-echo:{mlflow_model}@{alias}={mlflow_version}"


def _consume_echo(store: IdempotencyStore | None, key: str) -> bool:
    """True (and the marker consumed) when ModelPilot set this alias itself."""
    if store is None:
        return False
    marker = store.begin(key)
    if marker is None:  # no marker: we hold a claim on the key now; give it back
        store.release(key)
        return False
    store.complete(key, {"status": "consumed"}, ttl_seconds=0)
    return True


# -- in -----------------------------------------------------------------------------------
def request_mlflow_promotion(cmd: RequestMlflowPromotion, svc: Services) -> Outcome:
    """Promote the version an MLflow alias was set on to the alias's environment (gates decide)."""
    policy = settings(svc)
    environment = policy.environment_of(cmd.alias)
    model = model_name(policy, cmd.mlflow_model)
    base = {"mlflow_model": cmd.mlflow_model, "alias": cmd.alias, "mlflow_version": cmd.mlflow_version}
    if environment is None or model is None:
        what = f"alias {cmd.alias!r}" if environment is None else f"MLflow model {cmd.mlflow_model!r}"
        return Outcome("ignored", f"{what} is not mapped in the policy's mlflow block", base)
    if _consume_echo(svc.idempotency, echo_key(cmd.mlflow_model, cmd.alias, cmd.mlflow_version)):
        return Outcome("ignored", f"ModelPilot set {cmd.mlflow_model}@{cmd.alias} itself", base)
    mlflow = client(svc)
    now_at = mlflow.alias_version(cmd.mlflow_model, cmd.alias)
    if now_at != cmd.mlflow_version:
        return Outcome(
            "ignored",
            f"stale: {cmd.mlflow_model}@{cmd.alias} now points to {now_at or 'nothing'}, not v{cmd.mlflow_version}",
            base,
        )
    version = svc.registry.find_version(model, external_id=external_id(cmd.mlflow_model, cmd.mlflow_version))
    follow_ups: list[Outcome] = []
    if version is None:
        imported = import_mlflow_version(
            ImportMlflowVersion(cmd.mlflow_model, cmd.mlflow_version, actor=cmd.actor, trigger=cmd.trigger), svc
        )
        follow_ups.append(imported)
        if not imported.data.get("version"):
            raise NotFound(f"MLflow {cmd.mlflow_model} v{cmd.mlflow_version} could not be registered")
        number = int(imported.data["version"])
    else:
        number = version.version
    outcome = promote_model(
        PromoteModel(
            model=model,
            environment=environment,
            actor=cmd.actor,
            version=number,
            reason=f"MLflow alias {cmd.alias} set on {cmd.mlflow_model} v{cmd.mlflow_version}",
            trigger=cmd.trigger,
        ),
        svc,
    )
    for earlier in follow_ups:
        outcome.events[:0] = earlier.events
    outcome.follow_ups[:0] = follow_ups
    return outcome


def set_mlflow_version_tag(cmd: SetMlflowVersionTag, svc: Services) -> Outcome:
    """Record an approval when the tag's key is ``<approval_tag_prefix><environment>``; ignore other tags."""
    policy = settings(svc)
    base = {"mlflow_model": cmd.mlflow_model, "mlflow_version": cmd.mlflow_version, "key": cmd.key}
    prefix = policy.approval_tag_prefix
    model = model_name(policy, cmd.mlflow_model)
    if prefix is None or model is None or not cmd.key.startswith(prefix):
        return Outcome("ignored", f"tag {cmd.key!r} is not an approval", base)
    environment = cmd.key[len(prefix) :]
    svc.policy.check_environment(environment)
    approver = cmd.value.strip()
    if not approver or len(approver) > 200 or any(c.isspace() for c in approver):
        raise InvalidEvent(f"tag {cmd.key}: the value must name the approver (no spaces), got {cmd.value!r}")
    claimed = f"mlflow:{approver}"
    patterns = svc.policy.gates_for(model, environment).approvers
    if not any(fnmatch.fnmatchcase(claimed, pattern) for pattern in patterns):
        # the tag's value is a claim anyone with write access to MLflow can make: it counts only where the
        # policy names MLflow approvers explicitly (an empty approvers list, "anyone", does not include them)
        raise NotAuthorized(
            f"{claimed} may not approve for {environment}: MLflow tag approvals count only where the policy's "
            "approvers name them (e.g. 'mlflow:**')",
            actor=claimed,
        )
    version = svc.registry.find_version(model, external_id=external_id(cmd.mlflow_model, cmd.mlflow_version))
    if version is None:
        raise NotFound(f"MLflow {cmd.mlflow_model} v{cmd.mlflow_version} is not registered in ModelPilot yet")
    return approve_model(
        ApproveModel(
            model=model,
            version=version.version,
            environment=environment,
            approver=claimed,
            comment=f"MLflow tag {cmd.key} on {cmd.mlflow_model} v{cmd.mlflow_version}",
            trigger=cmd.trigger,
        ),
        svc,
    )


# -- out ----------------------------------------------------------------------------------
def sync_environment(
    svc: Services,
    model: str,
    environment: str,
    tags: dict[int, dict[str, str]],
    *,
    expect: set[int] | None = None,
) -> Outcome:
    """Point the environment's MLflow alias at the version ModelPilot holds there and write ``tags``
    (ModelPilot version → tag suffix → value) on the MLflow versions they concern.

    ``expect`` makes the alias write conditional: it is made only while MLflow's alias is unset or still points
    at one of those ModelPilot versions (where it pointed when the decision was taken). An alias a person moved
    since then is a newer request whose own webhook is on its way: the write-back leaves it for that webhook to
    decide, instead of undoing it. None writes unconditionally (``modelpilot mlflow sync``).
    """
    policy = settings(svc)
    mlflow = client(svc)
    written: list[str] = []
    alias = policy.aliases.get(environment)
    held = svc.registry.get_alias(model, environment)
    ref = mlflow_ref(svc.registry.get_version(model, held.version)) if held is not None else None
    for number, values in sorted(tags.items()):
        target = mlflow_ref(svc.registry.get_version(model, number))
        if target is None:
            continue
        for suffix, value in values.items():
            key = f"{policy.tag_prefix}{environment}{suffix}"
            mlflow.set_version_tag(target[0], target[1], key, value[:_TAG_VALUE_LIMIT])
            written.append(f"{target[0]} v{target[1]} {key}")
    if alias is None:
        return Outcome(
            "recorded", f"MLflow now shows {model} {environment}: " + "; ".join(written), {"mlflow": written}
        )
    allowed = None
    if expect is not None:
        refs = (mlflow_ref(svc.registry.get_version(model, number)) for number in expect)
        allowed = {None} | {r[1] for r in refs if r is not None}
    names = sorted({r[0] for r in map(mlflow_ref, svc.registry.list_versions(model)) if r is not None})
    for name in names:
        current = mlflow.alias_version(name, alias)
        wanted = ref[1] if ref is not None and ref[0] == name else None
        if current == wanted:
            if wanted is not None:
                written.append(f"{name}@{alias} = v{wanted}")
            continue
        if allowed is not None and current not in allowed:
            written.append(f"{name}@{alias} left at v{current}: moved since, its own webhook decides")
            continue
        if wanted is None:
            mlflow.delete_alias(name, alias)
            written.append(f"{name}@{alias} removed")
            continue
        if svc.idempotency is not None:
            marker = {"status": "expected", "environment": environment}
            svc.idempotency.complete(echo_key(name, alias, wanted), marker, ttl_seconds=ECHO_SECONDS)
        mlflow.set_alias(name, alias, wanted)
        written.append(f"{name}@{alias} = v{wanted}")
    return Outcome("recorded", f"MLflow now shows {model} {environment}: " + "; ".join(written), {"mlflow": written})


def sync_mlflow(cmd: SyncMlflow, svc: Services) -> Outcome:
    """Write ModelPilot's aliases to MLflow again (after a failed write-back): every environment, or one."""
    environments = [cmd.environment] if cmd.environment else list(settings(svc).aliases)
    for environment in environments:
        svc.policy.check_environment(environment)
    if cmd.model not in svc.registry.list_models():
        raise NotFound(f"unknown model {cmd.model!r}")
    done = [sync_environment(svc, cmd.model, environment, {}) for environment in environments]
    written = [line for outcome in done for line in outcome.data["mlflow"]]
    message = f"MLflow shows {cmd.model} as ModelPilot holds it: " + ("; ".join(written) or "nothing to write")
    return Outcome("recorded", message, {"model": cmd.model, "mlflow": written})


def _report(**fields: Any) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)


def _safely(
    bus: MessageBus, model: str, environment: str, tags: dict[int, dict[str, str]], expect: set[int]
) -> Outcome | None:
    """Write back, unless MLflow is not configured; a failure is notified, never undoes the decision."""
    svc = bus.services
    if svc.mlflow is None or svc.policy.mlflow is None:
        return None
    if not any(mlflow_ref(v) for v in svc.registry.list_versions(model)):
        return None
    try:
        return sync_environment(svc, model, environment, tags, expect=expect)
    except ModelPilotError as exc:
        message = f"MLflow write-back of {model} {environment} failed: {exc.message}; run `modelpilot mlflow sync`"
        log.error("%s", message, extra={"modelpilot": {"model": model, "environment": environment}})
        svc.notifier.notify("[modelpilot] MLflow write-back failed", message, attributes={"model": model})
        return Outcome("failed", message, {"model": model, "environment": environment})


def _gates(bus: MessageBus, model: str, digest: str) -> dict[str, str]:
    for record in reversed(bus.services.registry.audit_records(model)):
        if record.gate_report_digest == digest:
            gates = record.evidence.get("gates")
            return dict(gates) if isinstance(gates, dict) else {}
    return {}


def on_model_promoted(event: ModelPromoted, bus: MessageBus) -> Outcome | None:
    """Set the alias and tag the promoted version (and the one it replaced)."""
    report = _report(
        status="promoted",
        gates=_gates(bus, event.model, event.gate_report_digest),
        gate_report_digest=event.gate_report_digest,
        actor=event.actor,
        revision=event.revision,
    )
    tags = {event.version: {"": "promoted", ".report": report}}
    if event.from_version is not None:
        tags[event.from_version] = {"": "replaced"}
    # a promotion MLflow asked for: MLflow already shows it, and an alias moved since is a newer request;
    # one made in ModelPilot (CLI, API, upload): MLflow still shows the replaced version
    expect = {event.version}
    if event.actor != ACTOR and event.from_version is not None:
        expect.add(event.from_version)
    return _safely(bus, event.model, event.environment, tags, expect)


def on_promotion_blocked(event: PromotionBlocked, bus: MessageBus) -> Outcome | None:
    """Tag the blocked version with the failed gates, and set the alias back to what the environment holds."""
    report = _report(
        status="blocked",
        failed_gates=event.failed_gates,
        reasons=event.reasons,
        gate_report_digest=event.gate_report_digest,
        actor=event.actor,
    )
    tags = {event.version: {"": "blocked", ".report": report}}
    # MLflow shows the blocked candidate (the alias someone set) or what the environment holds
    held = bus.services.registry.get_alias(event.model, event.environment)
    expect = {event.version} | ({held.version} if held is not None else set())
    return _safely(bus, event.model, event.environment, tags, expect)


def on_model_rolled_back(event: ModelRolledBack, bus: MessageBus) -> Outcome | None:
    """Move the alias back and tag both versions."""
    report = _report(status="rolled_back", reason=event.reason, actor=event.actor, to_version=event.to_version)
    tags = {event.from_version: {"": "rolled_back", ".report": report}, event.to_version: {"": "restored"}}
    return _safely(bus, event.model, event.environment, tags, {event.from_version, event.to_version})
