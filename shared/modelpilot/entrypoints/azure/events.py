"""Event Grid payloads of Azure Storage and Azure ML → commands.

* ``Microsoft.Storage.BlobCreated`` for a ``modelpilot.json`` in the models container (or
  the same blob through a blob trigger) → ``RegisterModel(auto_promote=True)``; other
  blobs are ignored (``None``).
* ``Microsoft.MachineLearningServices.ModelRegistered`` → ``RegisterModel`` of the
  package named by the model's ``modelpilot_package`` tag (or property).
* ``Microsoft.MachineLearningServices.RunCompleted`` of a model-monitor run tagged
  ``modelpilot_model`` / ``modelpilot_environment`` → ``HandleAlarm`` (state ``ALARM``
  when ``modelpilot_threshold_breached`` is true, else ``OK``);
  ``DatasetDriftDetected`` of a monitor named ``<model>--<environment>`` → ``HandleAlarm(ALARM)``.

Each translation also returns the event's business key for the idempotency store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelpilot.domain.commands import HandleAlarm, RegisterModel
from modelpilot.entrypoints._validation import check_object_name
from modelpilot.entrypoints.azure.envelope import Envelope, validation_message
from modelpilot.exceptions import InvalidEvent

if TYPE_CHECKING:
    from modelpilot.domain.commands import Command

__all__ = [
    "ALARM_TYPES",
    "BLOB_CREATED",
    "MODEL_REGISTERED",
    "Translation",
    "alarm_command",
    "blob_location",
    "blob_trigger_command",
    "model_registered_command",
    "upload_command",
]

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
DRIFT_DETECTED = "Microsoft.MachineLearningServices.DatasetDriftDetected"
ALARM_TYPES = (RUN_COMPLETED, DRIFT_DETECTED)
MANIFEST = "modelpilot.json"
SYSTEM_ACTOR = "system:eventgrid"
_TRUE = {"true", "1", "yes", "breached"}


@dataclass(frozen=True)
class Translation:
    """A command and the business key that makes its event idempotent."""

    command: Command
    key: str


def _invalid(env: Envelope, exc: ValidationError) -> InvalidEvent:
    return InvalidEvent(f"{env.type} event {env.id}: {validation_message(exc)}", event_id=env.id)


def _check_type(env: Envelope, *expected: str) -> None:
    if env.type not in expected:
        raise InvalidEvent(
            f"event {env.id} is {env.type!r}; this function takes {' or '.join(expected)}",
            event_id=env.id,
            event_type=env.type,
        )


class _BlobCreated(BaseModel):
    model_config = ConfigDict(extra="allow")

    url: str = Field(min_length=1)
    e_tag: str | None = Field(default=None, alias="eTag")
    sequencer: str | None = None
    content_length: int | None = Field(default=None, alias="contentLength")


def blob_location(env: Envelope, url: str) -> tuple[str, str]:
    """Return ``(container, blob name)`` from the subject (``/blobServices/default/containers/<c>/blobs/<b>``)
    or, failing that, from the blob URL (virtual-host or path-style, as Azurite uses)."""
    marker = "/containers/"
    if env.subject.startswith("/blobServices/") and marker in env.subject and "/blobs/" in env.subject:
        container, _, name = env.subject.split(marker, 1)[1].partition("/blobs/")
        return container, name
    parts = unquote(urlparse(url).path).lstrip("/").split("/")
    host = urlparse(url).hostname or ""
    if ".blob." not in host and len(parts) > 2:  # path-style: /<account>/<container>/<blob>
        parts = parts[1:]
    if len(parts) < 2:
        raise InvalidEvent(f"cannot tell container and blob from {url!r}", event_id=env.id)
    return parts[0], "/".join(parts[1:])


def upload_command(env: Envelope, *, container: str) -> Translation | None:
    """Translate a BlobCreated event; ``None`` when the blob is not a manifest in ``container``."""
    _check_type(env, BLOB_CREATED)
    try:
        data = _BlobCreated.model_validate(env.data)
    except ValidationError as exc:
        raise _invalid(env, exc) from None
    blob_container, name = blob_location(env, data.url)
    if blob_container != container or not (name == MANIFEST or name.endswith("/" + MANIFEST)):
        return None
    check_object_name(name, "blob name", event_id=env.id)
    version_tag = data.e_tag or data.sequencer or env.id
    key = f"blob:{blob_container}/{name}@{version_tag}"
    return Translation(
        RegisterModel(
            package_uri=f"az://{blob_container}/{name}",
            actor=SYSTEM_ACTOR,
            trigger=key,
            auto_promote=True,
            source="upload",
        ),
        key,
    )


def blob_trigger_command(blob_name: str, etag: str | None, *, container: str) -> Translation | None:
    """Translate a blob trigger's ``<container>/<path>`` (``func.InputStream.name``) like a BlobCreated event.

    The business key is the same as :func:`upload_command`'s, so the blob trigger and
    the Event Grid trigger deduplicate each other when both are subscribed.
    """
    blob_container, _, name = blob_name.partition("/")
    if not blob_container or not name:
        raise InvalidEvent(f"blob trigger name {blob_name!r} is not <container>/<path>")
    if blob_container != container or not (name == MANIFEST or name.endswith("/" + MANIFEST)):
        return None
    check_object_name(name, "blob name")
    if not etag:
        raise InvalidEvent(f"blob trigger for {blob_name} carries no ETag; cannot deduplicate it")
    key = f"blob:{blob_container}/{name}@{etag}"
    return Translation(
        RegisterModel(
            package_uri=f"az://{blob_container}/{name}",
            actor=SYSTEM_ACTOR,
            trigger=key,
            auto_promote=True,
            source="upload",
        ),
        key,
    )


class _ModelRegistered(BaseModel):
    model_config = ConfigDict(extra="allow")

    model_name: str = Field(alias="ModelName", min_length=1)
    model_version: int | str = Field(alias="ModelVersion")
    model_tags: dict[str, Any] = Field(default_factory=dict, alias="ModelTags")
    model_properties: dict[str, Any] = Field(default_factory=dict, alias="ModelProperties")


def _workspace(env: Envelope) -> str:
    return env.source.rstrip("/").rsplit("/", 1)[-1] or "workspace"


def model_registered_command(env: Envelope) -> Translation:
    """Translate an Azure ML ModelRegistered event into ``RegisterModel``."""
    _check_type(env, MODEL_REGISTERED)
    try:
        data = _ModelRegistered.model_validate(env.data)
    except ValidationError as exc:
        raise _invalid(env, exc) from None
    package = data.model_tags.get("modelpilot_package") or data.model_properties.get("modelpilot_package")
    if not isinstance(package, str) or not package.startswith("az://"):
        raise InvalidEvent(
            f"Azure ML model {data.model_name}:{data.model_version} has no modelpilot_package tag; tag it "
            "with the package URI (az://<container>/<path>) to register it here",
            event_id=env.id,
            model=data.model_name,
        )
    external = f"azureml:{_workspace(env)}/{data.model_name}:{data.model_version}"
    return Translation(
        RegisterModel(
            package_uri=package, actor="system:azureml", trigger=external, source="azureml", external_id=external
        ),
        external,
    )


class _RunCompleted(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str = Field(alias="runId", min_length=1)
    experiment_name: str = Field(default="", alias="experimentName")
    run_tags: dict[str, Any] = Field(default_factory=dict, alias="runTags")
    run_properties: dict[str, Any] = Field(default_factory=dict, alias="runProperties")


class _DriftDetected(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str = Field(alias="RunId", min_length=1)
    drift_name: str = Field(alias="DataDriftName", min_length=1)
    drift_coefficient: float | None = Field(default=None, alias="DriftCoefficient")


def alarm_command(env: Envelope) -> Translation:
    """Translate a model-monitor run completion or a dataset-drift event into ``HandleAlarm``."""
    _check_type(env, *ALARM_TYPES)
    try:
        if env.type == DRIFT_DETECTED:
            return _drift_alarm(env, _DriftDetected.model_validate(env.data))
        run = _RunCompleted.model_validate(env.data)
    except ValidationError as exc:
        raise _invalid(env, exc) from None
    tags = {**run.run_properties, **run.run_tags}
    model, environment = tags.get("modelpilot_model"), tags.get("modelpilot_environment")
    if not model or not environment:
        raise InvalidEvent(
            f"run {run.run_id} is not a ModelPilot monitor run: tag it with modelpilot_model "
            "and modelpilot_environment",
            event_id=env.id,
        )
    breached = str(tags.get("modelpilot_threshold_breached", "")).strip().lower() in _TRUE
    alarm = str(tags.get("modelpilot_alarm") or run.experiment_name or "azureml-model-monitor")
    key = f"azureml-run:{run.run_id}"
    return Translation(
        HandleAlarm(
            model=str(model),
            environment=str(environment),
            alarm_name=alarm,
            state="ALARM" if breached else "OK",
            actor="system:azureml",
            reason=f"Azure ML monitor {alarm} {'breached its threshold' if breached else 'is within threshold'}",
            trigger=key,
            evidence={"run_id": run.run_id, "experiment": run.experiment_name, "event_id": env.id},
        ),
        key,
    )


def _drift_alarm(env: Envelope, drift: _DriftDetected) -> Translation:
    model, sep, environment = drift.drift_name.rpartition("--")
    if not sep or not model or not environment:
        raise InvalidEvent(
            f"drift monitor {drift.drift_name!r} does not name a model and environment; name it <model>--<environment>",
            event_id=env.id,
        )
    key = f"azureml-drift:{drift.run_id}"
    return Translation(
        HandleAlarm(
            model=model,
            environment=environment,
            alarm_name=drift.drift_name,
            state="ALARM",
            actor="system:azureml",
            reason=f"Azure ML drift monitor {drift.drift_name} detected drift",
            trigger=key,
            evidence={"run_id": drift.run_id, "drift_coefficient": drift.drift_coefficient, "event_id": env.id},
        ),
        key,
    )
