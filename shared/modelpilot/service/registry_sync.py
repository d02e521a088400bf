"""SageMaker lifecycle stages both ways: a stage approved in SageMaker requests a promotion; ModelPilot's
promotions, blocks and rollbacks are written back to the package's ``ModelLifeCycle``.

Inbound, :func:`apply_source_stage` handles :class:`~modelpilot.domain.commands.ApplySourceStage`: a stage
the model's ``sagemaker.stages`` maps to an environment, with ``StageStatus: Approved``, promotes the
version there through :func:`~modelpilot.service.lifecycle.promote_model` (the gates decide; a block is
reported and written back); anything else changes nothing.

Outbound, the reactions to ``ModelPromoted``, ``PromotionBlocked`` and ``ModelRolledBack`` write, for each
version the event concerns that came from SageMaker (its ``external_id`` is the model package ARN):

====================================  =====================================================
what happened in environment *E*       ``ModelLifeCycle`` written (``Stage`` = *E*'s stage)
====================================  =====================================================
a version promoted to *E*              ``StageStatus: Approved`` (+ ``ModelApprovalStatus:
                                       Approved`` with ``approval_status: true``)
a version blocked from *E*             ``StageStatus: Rejected``
the version *E* ran until then         ``superseded_status`` (``Archived``)
(replaced or rolled back)
the version a rollback restored        ``StageStatus: Approved``
====================================  =====================================================

A version that a later mapped environment still holds keeps the later stage (nothing is written).
``StageDescription`` starts with the marker ``[modelpilot <Stage>/<StageStatus>]`` and carries the gate
report's digest. No loop: the state change the write-back causes comes back with exactly the stage and
status the marker names, and :func:`is_write_back` recognises it (the entrypoint then asks for nothing);
even without the marker, a promotion to where the alias already holds the version is ``unchanged``.

A failed write-back (throttling, a missing package, a refused call) never undoes or fails the decision
it mirrors: ModelPilot's registry is the truth; the failure is logged, notified and reported.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from modelpilot import telemetry
from modelpilot.exceptions import ModelPilotError, UnknownVersion

if TYPE_CHECKING:
    from modelpilot.domain.commands import ApplySourceStage
    from modelpilot.domain.events import ModelPromoted, ModelRolledBack, PromotionBlocked
    from modelpilot.policy.registries import SageMakerSync
    from modelpilot.service.messagebus import MessageBus, Outcome, OutcomeStatus, Services

__all__ = [
    "MARKER",
    "apply_source_stage",
    "describe",
    "is_write_back",
    "on_model_promoted",
    "on_model_rolled_back",
    "on_promotion_blocked",
]

log = telemetry.get_logger("modelpilot.registry_sync")

SOURCE = "sagemaker"
#: ``StageDescription`` starts with this: ``[modelpilot <Stage>/<StageStatus>] …``
MARKER = "[modelpilot {stage}/{status}]"
_MARKER = re.compile(r"^\[modelpilot (?P<stage>[^/\]\s]+)/(?P<status>[^\]\s]+)\]")
MAX_DESCRIPTION = 1024


def is_write_back(stage: str, stage_status: str, description: str | None) -> bool:
    """True when a ``ModelLifeCycle`` is what ModelPilot wrote: its marker names this very stage and status.

    A person who moves the stage or status in SageMaker makes them differ from the marker (even when
    the description is left as ModelPilot wrote it), so their change is a request again.
    """
    match = _MARKER.match(description or "")
    if match is None:
        return False
    return match.group("stage") == stage and match.group("status") == stage_status


def describe(stage: str, status: str, text: str, *, keep: str = "") -> str:
    """Return a ``StageDescription``: the marker, ``text`` (cut to fit) and ``keep`` whole; at most 1024 characters."""
    head = MARKER.format(stage=stage, status=status) + " "
    room = MAX_DESCRIPTION - len(head) - len(keep)
    if len(text) > room:
        text = text[: max(room - 1, 0)] + "…"
    return head + text + keep


# -- inbound ------------------------------------------------------------------------
def apply_source_stage(cmd: ApplySourceStage, svc: Services) -> Outcome:
    """Promote the version to the environment its approved stage maps to; anything else changes nothing."""
    from modelpilot.domain.commands import PromoteModel
    from modelpilot.package.manifest import (
        MANIFEST_NAME,
        MAX_MANIFEST_BYTES,
        manifest_digest,
        package_root,
        parse_manifest,
    )
    from modelpilot.policy.registries import APPROVED
    from modelpilot.service.lifecycle import promote_model
    from modelpilot.service.messagebus import Outcome

    # the registration before this command verified the package; the name is all this needs
    uri = svc.artifacts.join(package_root(cmd.package_uri), MANIFEST_NAME)
    manifest = parse_manifest(svc.artifacts.read_bytes(uri, max_bytes=MAX_MANIFEST_BYTES), source=uri)
    model = manifest.name
    version = svc.registry.find_version(model, external_id=cmd.external_id) or svc.registry.find_version(
        model, manifest_digest=manifest_digest(manifest)
    )
    if version is None:
        raise UnknownVersion(f"{cmd.external_id} ({cmd.package_uri}) is not registered in {model}", model=model)
    data = {"model": model, "version": version.version, "stage": cmd.stage, "stage_status": cmd.stage_status}
    sync = svc.policy.model_policy(model).sagemaker
    environment = sync.environment_of(cmd.stage) if sync else None
    if environment is None:
        return Outcome(
            "noop", f"{model}: SageMaker stage {cmd.stage!r} maps to no environment (policy: sagemaker.stages)", data
        )
    if cmd.stage_status != APPROVED:
        return Outcome(
            "noop", f"{model} v{version.version}: stage {cmd.stage} is {cmd.stage_status}, not {APPROVED}", data
        )
    promoted = promote_model(
        PromoteModel(
            model=model,
            environment=environment,
            actor=cmd.actor,
            version=version.version,
            reason=f"stage {cmd.stage} approved in {cmd.source}",
            trigger=cmd.trigger,
        ),
        svc,
    )
    promoted.data.update(stage=cmd.stage, stage_status=cmd.stage_status)
    return promoted


# -- outbound -----------------------------------------------------------------------
def on_model_promoted(event: ModelPromoted, bus: MessageBus) -> Outcome | None:
    """Write the promoted version's stage ``Approved`` and the replaced version's ``superseded_status``."""
    report = f"; report sha256:{event.gate_report_digest}"
    return _write_back(
        bus.services,
        event.model,
        event.environment,
        [
            (
                event.version,
                "approved",
                f"{event.model} v{event.version} promoted to {event.environment} by {event.actor}; gates passed",
                report,
            ),
            (
                event.from_version,
                "superseded",
                f"{event.model} v{event.from_version} left {event.environment}: "
                f"replaced by v{event.version} ({event.actor})",
                "",
            ),
        ],
    )


def on_promotion_blocked(event: PromotionBlocked, bus: MessageBus) -> Outcome | None:
    """Write the blocked version's stage ``Rejected`` with the failed gates and the report digest."""
    text = f"{event.model} v{event.version} blocked from {event.environment} ({event.actor}): " + "; ".join(
        f"{g}: {r}" for g, r in zip(event.failed_gates, event.reasons, strict=False)
    )
    return _write_back(
        bus.services,
        event.model,
        event.environment,
        [(event.version, "rejected", text, f"; report sha256:{event.gate_report_digest}")],
    )


def on_model_rolled_back(event: ModelRolledBack, bus: MessageBus) -> Outcome | None:
    """Write the rolled-back version's ``superseded_status`` and the restored version's ``Approved``."""
    return _write_back(
        bus.services,
        event.model,
        event.environment,
        [
            (
                event.from_version,
                "superseded",
                f"{event.model} v{event.from_version} rolled back from "
                f"{event.environment} to v{event.to_version} by {event.actor}: {event.reason}",
                "",
            ),
            (
                event.to_version,
                "approved",
                f"{event.model} v{event.to_version} restored in {event.environment} "
                f"by rollback ({event.actor}): {event.reason}",
                "",
            ),
        ],
    )


def _status(sync: SageMakerSync, kind: str) -> str:
    from modelpilot.policy.registries import APPROVED, REJECTED

    return {"approved": APPROVED, "rejected": REJECTED}.get(kind, sync.superseded_status)


def _held_later(svc: Services, sync: SageMakerSync, model: str, environment: str, version: int) -> str | None:
    """The latest mapped environment after ``environment`` that holds ``version`` now, if any."""
    envs = svc.policy.environments
    for later in reversed(envs[envs.index(environment) + 1 :]):
        alias = svc.registry.get_alias(model, later)
        if sync.stage_of(later) and alias is not None and alias.version == version:
            return later
    return None


def _write_back(
    svc: Services, model: str, environment: str, items: list[tuple[int | None, str, str, str]]
) -> Outcome | None:
    """Write each ``(version, kind, text, keep)`` back to SageMaker; the outcome says what was written or failed."""
    from modelpilot.ports import LifecycleUpdate

    sync = svc.policy.model_policy(model).sagemaker
    stage = sync.stage_of(environment) if sync and sync.write_back else None
    writer = svc.lifecycle_sync.get(SOURCE)
    if sync is None or stage is None or writer is None:
        return None
    written: list[dict[str, object]] = []
    failed: list[dict[str, object]] = []
    for number, kind, text, keep in items:
        if number is None:
            continue
        version = svc.registry.get_version(model, number)
        if version.source != SOURCE or not version.external_id:
            continue
        later = _held_later(svc, sync, model, environment, number)
        if later is not None:
            log.info("%s v%s stays at the stage of %s", model, number, later)
            continue
        status = _status(sync, kind)
        entry: dict[str, object] = {"version": number, "arn": version.external_id, "stage": stage, "status": status}
        try:
            writer.write(
                LifecycleUpdate(
                    external_id=version.external_id,
                    stage=stage,
                    stage_status=status,
                    description=describe(stage, status, text, keep=keep),
                    approval_status="Approved" if sync.approval_status and kind == "approved" else None,
                )
            )
        except ModelPilotError as exc:
            failed.append(
                write_back_failed(
                    svc,
                    exc,
                    entry,
                    model=model,
                    environment=environment,
                    registry="SageMaker",
                    what=f"{stage}/{status}",
                    external_id=version.external_id,
                )
            )
            continue
        written.append(entry)
    summary = ", ".join(f"v{w['version']} {w['stage']}/{w['status']}" for w in written) or "nothing"
    return write_back_outcome(f"SageMaker lifecycle of {model}: wrote {summary}", model, environment, written, failed)


def write_back_failed(
    svc: Services,
    exc: ModelPilotError,
    entry: dict[str, object],
    *,
    model: str,
    environment: str,
    registry: str,
    what: str,
    external_id: str,
) -> dict[str, object]:
    """Log and notify a write-back the source registry refused (the decision stands); return the failed entry."""
    number = entry["version"]
    log.error("write-back of %s v%s to %s failed: %s", model, number, registry, exc.message)
    svc.notifier.notify(
        f"[modelpilot] {registry} write-back failed",
        f"{model} v{number} {environment} ({external_id}): {what} not written: {exc.message}",
        attributes={"model": model, "error": exc.code},
    )
    return {**entry, "error": exc.code, "message": exc.message}


def write_back_outcome(
    message: str,
    model: str,
    environment: str,
    written: list[dict[str, object]],
    failed: list[dict[str, object]],
) -> Outcome | None:
    """The outcome of a write-back reaction: None when nothing was to be written, else recorded / partial / failed."""
    from modelpilot.service.messagebus import Outcome

    if not written and not failed:
        return None
    result: OutcomeStatus = "recorded" if not failed else ("partial" if written else "failed")
    message += f"; {len(failed)} failed" if failed else ""
    return Outcome(result, message, {"model": model, "environment": environment, "written": written, "failed": failed})
