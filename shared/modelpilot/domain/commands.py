"""Commands: imperative requests the message bus hands to exactly one handler.

Every command carries the ``actor`` (who asked) and a ``trigger`` (the id of the
event or request that caused it, recorded in the audit log and used for
idempotency keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.domain.canary import CanaryAction
    from modelpilot.domain.model import MonitorKind, MonitorState, VersionStatus

__all__ = [
    "AdvanceCanaries",
    "ApplySourceStage",
    "ApproveModel",
    "BuildReferenceProfile",
    "ChangeCanary",
    "CheckSlos",
    "Command",
    "HandleAlarm",
    "ImportMlflowVersion",
    "MergeDriftWindow",
    "PromoteModel",
    "RecordMonitorStatus",
    "RegisterModel",
    "RejectModel",
    "RequestMlflowPromotion",
    "RollbackModel",
    "RunDriftBatch",
    "RunQualityBatch",
    "SetMlflowVersionTag",
    "SyncMlflow",
]


@dataclass(frozen=True)
class Command:
    """Base class of all commands."""


@dataclass(frozen=True)
class RegisterModel(Command):
    """Register the package at ``package_uri`` (a folder, ``s3://`` or blob prefix).

    ``auto_promote`` runs the gates of the first environment afterwards and
    promotes when they pass (the upload trigger's behaviour).
    ``status`` lets a registry event register a version as ``pending_approval``.
    """

    package_uri: str
    actor: str
    trigger: str | None = None
    auto_promote: bool = False
    source: str = "upload"
    external_id: str | None = None
    status: VersionStatus = "registered"


@dataclass(frozen=True)
class PromoteModel(Command):
    """Move ``environment``'s alias to ``version`` if every gate passes.

    ``version=None`` promotes the version currently in the previous environment
    (or the latest version, for the first environment). ``from_version`` makes the
    promotion conditional: nothing moves unless ``environment`` still runs that version.
    """

    model: str
    environment: str
    actor: str
    version: int | None = None
    reason: str = ""
    trigger: str | None = None
    dry_run: bool = False
    from_version: int | None = None


@dataclass(frozen=True)
class ApplySourceStage(Command):
    """A source registry moved the version registered from ``package_uri`` to ``stage`` with ``stage_status``
    (SageMaker's ``ModelLifeCycle``); a stage the model's policy maps to an environment, moved to
    ``Approved``, requests a promotion there (the gates still decide)."""

    package_uri: str
    external_id: str
    stage: str
    stage_status: str
    actor: str
    source: str = "sagemaker"
    trigger: str | None = None


@dataclass(frozen=True)
class ApproveModel(Command):
    """Record ``approver``'s approval of ``version`` for ``environment``."""

    model: str
    version: int
    environment: str
    approver: str
    comment: str = ""
    trigger: str | None = None


@dataclass(frozen=True)
class RejectModel(Command):
    """Mark a version rejected: it can never be promoted."""

    model: str
    version: int
    actor: str
    reason: str = ""
    trigger: str | None = None


@dataclass(frozen=True)
class RollbackModel(Command):
    """Move ``environment``'s alias back.

    ``to_version`` names the target explicitly; otherwise the target is the last
    version that was healthy in that environment, from the alias history.
    ``from_version`` makes the rollback conditional: when the alias no longer
    points there, the rollback is a no-op that says so. ``evidence`` (an alert,
    an alarm) is stored in the audit record.
    """

    model: str
    environment: str
    actor: str
    reason: str
    to_version: int | None = None
    from_version: int | None = None
    trigger: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordMonitorStatus(Command):
    """Store a monitor's verdict (drift or SLO) for the promotion gates to read."""

    model: str
    environment: str
    kind: MonitorKind
    state: MonitorState
    version: int | None
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildReferenceProfile(Command):
    """Build and store the reference drift profile of a version from ``data_uri``
    (default: the manifest's ``reference_data_uri``)."""

    model: str
    version: int
    actor: str
    data_uri: str | None = None


@dataclass(frozen=True)
class RunDriftBatch(Command):
    """Compare the capture window of ``model``/``environment`` with the live version's
    reference profile. ``model=None`` runs every monitored model and environment.
    ``data_uri`` overrides the capture prefix. ``window`` is in seconds."""

    actor: str
    model: str | None = None
    environment: str | None = None
    window_seconds: int = 86400
    data_uri: str | None = None
    end: datetime | None = None
    trigger: str | None = None


@dataclass(frozen=True)
class MergeDriftWindow(Command):
    """Merge the partial profiles of a fanned-out drift window and report it (the fan-in step).

    ``plan`` is the window plan's JSON form, ``batches`` the batches' JSON forms and
    ``partials`` the references the partial step returned (inline or by URI).
    """

    actor: str
    plan: dict[str, Any]
    batches: tuple[dict[str, Any], ...]
    partials: tuple[dict[str, Any], ...]
    trigger: str | None = None


@dataclass(frozen=True)
class RunQualityBatch(Command):
    """Join the captured predictions of ``model``/``environment`` with their late labels and judge them.

    Windows are aligned to the policy's window length. ``end`` picks the last window (the one ending at or
    before it; default now); ``windows`` is how many windows back to run (default: the policy's lookback).
    ``window_of`` runs only the window containing that time (a label file of that hour landed).
    ``model=None`` runs every model whose policy has a ``quality`` block. ``data_uri``/``feedback_uri``
    replace the hourly capture and feedback prefixes (one window then).
    """

    actor: str
    model: str | None = None
    environment: str | None = None
    end: datetime | None = None
    windows: int | None = None
    data_uri: str | None = None
    feedback_uri: str | None = None
    window_of: datetime | None = None
    trigger: str | None = None


@dataclass(frozen=True)
class CheckSlos(Command):
    """Evaluate every SLO (or those of ``model``/``environment``) and act on alerts."""

    actor: str
    model: str | None = None
    environment: str | None = None
    now: datetime | None = None
    trigger: str | None = None


@dataclass(frozen=True)
class HandleAlarm(Command):
    """A platform alarm (CloudWatch alarm, Azure ML model-monitor breach) fired for a model.

    The rollback policy decides what follows (roll back, or only record): the
    alarm must be named in the environment's rollback policy, and a cooldown keeps
    one incident to one rollback. ``trigger`` is the alarm's business key (alarm
    name + state-change time) so a redelivered alarm changes nothing.
    """

    model: str
    environment: str
    alarm_name: str
    state: str
    actor: str
    reason: str = ""
    trigger: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportMlflowVersion(Command):
    """An MLflow model version was created: copy its artifacts and run into a package and register it."""

    mlflow_model: str
    mlflow_version: str
    actor: str
    trigger: str | None = None


@dataclass(frozen=True)
class RequestMlflowPromotion(Command):
    """An MLflow alias was set on a version: promote it to the alias's environment if the gates pass."""

    mlflow_model: str
    alias: str
    mlflow_version: str
    actor: str
    trigger: str | None = None


@dataclass(frozen=True)
class SetMlflowVersionTag(Command):
    """A tag was set on an MLflow model version: an approval when the policy says its key is one."""

    mlflow_model: str
    mlflow_version: str
    key: str
    value: str
    actor: str
    trigger: str | None = None


@dataclass(frozen=True)
class SyncMlflow(Command):
    """Set the MLflow aliases of ``model`` to the versions ModelPilot holds (every mapped environment, or one)."""

    model: str
    actor: str
    environment: str | None = None


@dataclass(frozen=True)
class AdvanceCanaries(Command):
    """The scheduler's tick: analyse every running canary whose step is due, then advance,
    hold, or abort it (``model``/``environment`` narrow the tick to one canary)."""

    actor: str
    model: str | None = None
    environment: str | None = None
    trigger: str | None = None


@dataclass(frozen=True)
class ChangeCanary(Command):
    """An operator's action on the canary in ``environment``: pause, resume, abort or promote (to 100 %).

    ``expected_revision`` makes the action conditional on the canary the operator saw:
    when the canary changed since, the action raises ``ConcurrencyConflict``.
    """

    model: str
    environment: str
    action: CanaryAction
    actor: str
    reason: str = ""
    expected_revision: int | None = None
    trigger: str | None = None
