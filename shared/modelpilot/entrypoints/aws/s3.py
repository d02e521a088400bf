"""Model upload payloads: S3 event notifications (``Records[]``) and EventBridge "Object Created".

A package is uploaded under ``models/<anything>/`` with its ``modelpilot.json``
last; the manifest's object-created event registers the package at that prefix.

* S3 notification keys are form-encoded (``+`` for spaces, ``%xx``; moto even
  encodes ``/``): they are decoded with ``unquote_plus``. EventBridge delivers
  the key as stored.
* ``s3:TestEvent`` messages (sent when a notification is configured) are ignored.
* Several records for the same key are ordered by ``sequencer`` (right-padded
  with zeros, then compared as strings) and only the newest is handled.
  Across deliveries, order cannot go wrong: registration reads the package as
  it is now, so a late, stale notification finds the newest manifest's digest
  already registered and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from modelpilot.domain.commands import RegisterModel
from modelpilot.entrypoints._validation import check_object_name, validate
from modelpilot.exceptions import InvalidEvent
from modelpilot.package.manifest import MANIFEST_NAME
from modelpilot.service.dispatch import Delivery

__all__ = ["ACTOR", "PREFIX", "S3Upload", "deliveries", "parse_uploads", "sequencer_key", "to_command"]

ACTOR = "system:s3-upload"
#: only manifests under this prefix of the model bucket are packages
PREFIX = "models/"


@dataclass(frozen=True)
class S3Upload:
    """One object-created notification, key decoded."""

    bucket: str
    key: str
    etag: str | None
    version_id: str | None
    sequencer: str | None

    @property
    def uri(self) -> str:
        """The object's ``s3://`` URI."""
        return f"s3://{self.bucket}/{self.key}"

    def idempotency_key(self) -> str:
        """The business key: bucket, key and the object's version id (or etag)."""
        return f"upload:{self.uri}@{self.version_id or self.etag or ''}"


def sequencer_key(sequencer: str | None, width: int = 64) -> str:
    """Return a sort key for S3 sequencers: right-pad with zeros, compare as strings."""
    return (sequencer or "").upper().ljust(width, "0")


def _from_records(event: dict[str, Any]) -> list[S3Upload]:
    from aws_lambda_powertools.utilities.parser.models import S3Model

    parsed = validate(S3Model, event, "S3 event notification")
    uploads = []
    for record in parsed.Records:
        if not record.eventName.startswith("ObjectCreated:") or record.s3.object is None:
            continue
        obj = record.s3.object
        version = obj.versionId if obj.versionId not in (None, "null") else None
        uploads.append(S3Upload(record.s3.bucket.name, unquote_plus(obj.key), obj.eTag, version, obj.sequencer))
    return uploads


def _from_eventbridge(event: dict[str, Any]) -> list[S3Upload]:
    from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel

    parsed = validate(S3EventNotificationEventBridgeModel, event, "EventBridge Object Created event")
    obj = parsed.detail.object
    return [S3Upload(parsed.detail.bucket.name, obj.key, obj.etag, obj.version_id, obj.sequencer)]


def parse_uploads(event: Any) -> list[S3Upload]:
    """Return the object-created uploads of an S3 notification or EventBridge event, newest per key, in order.

    Raises ``InvalidEvent`` when the payload is neither shape.
    """
    if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
        return []
    if isinstance(event, dict) and "Records" in event:
        uploads = _from_records(event)
    elif isinstance(event, dict) and event.get("detail-type") == "Object Created":
        uploads = _from_eventbridge(event)
    else:
        raise InvalidEvent(
            "not an S3 object-created event: expected 'Records' (S3 notification) or "
            "detail-type 'Object Created' (EventBridge)",
            field="<root>",
        )
    newest: dict[tuple[str, str], S3Upload] = {}
    for upload in uploads:
        seen = newest.get((upload.bucket, upload.key))
        if seen is None or sequencer_key(upload.sequencer) >= sequencer_key(seen.sequencer):
            newest[(upload.bucket, upload.key)] = upload
    return sorted(newest.values(), key=lambda u: sequencer_key(u.sequencer))


def to_command(upload: S3Upload) -> RegisterModel | None:
    """Return the registration of the package whose manifest was uploaded, or None for other objects."""
    if not upload.key.startswith(PREFIX) or not upload.key.endswith("/" + MANIFEST_NAME):
        return None
    check_object_name(upload.key, "S3 key", bucket=upload.bucket)
    root = upload.uri[: -len(MANIFEST_NAME) - 1]
    return RegisterModel(
        package_uri=root,
        actor=ACTOR,
        trigger=f"{upload.uri}#{upload.version_id or upload.etag}",
        auto_promote=True,
        source="upload",
    )


def deliveries(event: Any) -> list[Delivery]:
    """Return one delivery per uploaded object (newest per key, in ``sequencer`` order); other objects are ignored."""
    out = []
    for upload in parse_uploads(event):
        command = to_command(upload)
        ignored = "" if command is not None else f"{upload.uri} is not a package manifest"
        out.append(Delivery(upload.uri, command, upload.idempotency_key(), ignored))
    return out
