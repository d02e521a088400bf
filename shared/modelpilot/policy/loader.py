"""The one policy loader of every backend: where the policy file is, how it is read, when it is the default.

A policy is found in one of two ways:

* **named** (``MODELPILOT_POLICY``, ``--policy``): a local file or an artifact-store URI
  (``s3://…``, ``az://…``). It must exist: a named policy that is missing is an error,
  never a silent fallback to the default.
* **by convention**: ``modelpilot.yaml`` in the home folder, the model bucket or the
  models container. When it is absent the documented default policy applies.

A policy file that exists but is empty, not UTF-8, too large or invalid is a ``PolicyError``
wherever it is found: the policy fails closed, never to the default. The policy read is kept for
``MODELPILOT_POLICY_TTL_SECONDS`` (30 s by default) and then checked again with a conditional
read, so an edited policy applies in every warm worker within that time.

Files are read with the standard library; URIs through the ``ArtifactStore`` port,
so the same code serves the local folder, S3 and Blob Storage.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from modelpilot.exceptions import ArtifactMissing, DataError, PolicyError
from modelpilot.policy.document import default_policy, load_policy_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelpilot.policy.document import Policy
    from modelpilot.ports import ArtifactStore

__all__ = ["DEFAULT_TTL_SECONDS", "MAX_POLICY_BYTES", "POLICY_NAME", "PolicyLoader"]

#: the file name a backend looks for when no policy is named
POLICY_NAME = "modelpilot.yaml"
#: a policy larger than this is refused before it is parsed
MAX_POLICY_BYTES = 1024 * 1024
#: how long a policy read is used before the file is checked again (``MODELPILOT_POLICY_TTL_SECONDS``)
DEFAULT_TTL_SECONDS = 30.0
#: the version of a conventional policy file that does not exist (the default policy applies)
_MISSING = "<missing>"


#: a policy read: the version it read, the policy or the error it gave, when it was checked
_Entry = tuple["str | None", "Policy | PolicyError", float]


def _is_uri(location: str) -> bool:
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme not in {"", "file"}


class PolicyLoader:
    """Loads the policy and keeps it for ``ttl_seconds``, then checks whether the file changed.

    The check is a conditional read: a local file's identity (modification time, size, inode), an
    object's ETag (S3 ``If-None-Match``, Blob ``If-None-Match``). An unchanged file is not parsed
    again; a changed one replaces the policy, so a tightened threshold applies within ``ttl_seconds``
    in every warm worker, not only after the worker dies. A policy that is empty or does not parse
    raises ``PolicyError`` on every use until it is fixed (never the default policy); a read that
    fails for a reason a retry can help (``TransientError``) is raised and nothing is cached.

    Parameters
    ----------
    artifacts:
        The store that reads URIs (``s3://``, ``az://``); local files are read directly.
    named:
        A policy named by configuration; it must exist.
    conventional:
        Where the policy is looked for when none is named; missing there means the default policy.
    ttl_seconds:
        How long a policy (or a policy error) read is used before the file is checked again; 0 checks on
        every use.
    clock:
        Monotonic seconds (tests pass a simulated clock).
    """

    def __init__(
        self,
        artifacts: ArtifactStore,
        *,
        named: str | None = None,
        conventional: str | None = None,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.artifacts = artifacts
        self.named = named
        self.conventional = conventional
        self.ttl_seconds = max(0.0, ttl_seconds)
        self.clock = clock
        #: (the version read, the policy or the error it gave, when it was checked)
        self._entry: _Entry | None = None
        self._lock = threading.Lock()
        #: how many times the policy text was parsed (a changed or first read)
        self.parses = 0

    @property
    def location(self) -> str | None:
        """Where the policy is read from (None: the default policy)."""
        return self.named or self.conventional

    def __call__(self) -> Policy:
        """Return the policy, reading it on first use and checking it again once ``ttl_seconds`` passed."""
        with self._lock:
            entry = self._entry
            now = self.clock()
            if entry is None or now - entry[2] >= self.ttl_seconds:
                tag, found = self._refresh(entry)
                entry = self._entry = (tag, found, now)
        found = entry[1]
        if isinstance(found, PolicyError):
            raise found
        return found

    def _refresh(
        self, entry: tuple[str | None, Policy | PolicyError, float] | None
    ) -> tuple[str | None, Policy | PolicyError]:
        """Return the version now at the location and its policy (or error), parsing only what changed."""
        location = self.location
        if location is None:
            return None, default_policy()
        known = entry[0] if entry is not None else None
        if not _is_uri(location):
            tag, text = self._read_file(Path(location.removeprefix("file://")), known)
        else:
            tag, text = self._read_object(location, known)
        if text is None:  # unchanged since the last read
            assert entry is not None
            return entry[0], entry[1]
        if tag == _MISSING:
            return tag, default_policy()
        self.parses += 1
        try:
            return tag, load_policy_text(text or "", source=location)
        except PolicyError as exc:
            return tag, exc

    def _read_file(self, path: Path, known: str | None) -> tuple[str, str | None]:
        try:
            info = path.stat()
        except FileNotFoundError:
            if self.named:
                raise PolicyError(f"policy file {path} does not exist", source=str(path)) from None
            return _MISSING, None if known == _MISSING else ""
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc.strerror}", source=str(path)) from None
        tag = f"{info.st_mtime_ns}:{info.st_size}:{info.st_ino}"
        if tag == known:
            return tag, None
        if info.st_size > MAX_POLICY_BYTES:
            raise PolicyError(f"policy file {path} is larger than {MAX_POLICY_BYTES} bytes", source=str(path))
        try:
            return tag, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise PolicyError(f"{path}: the policy is not UTF-8 text", source=str(path)) from None
        except OSError as exc:
            raise PolicyError(f"cannot read policy file {path}: {exc.strerror}", source=str(path)) from None

    def _read_object(self, location: str, known: str | None) -> tuple[str, str | None]:
        try:
            data, tag = self.artifacts.read_if_changed(
                location, None if known == _MISSING else known, max_bytes=MAX_POLICY_BYTES
            )
        except ArtifactMissing:
            if self.named:
                raise PolicyError(f"policy {location} does not exist", source=location) from None
            return _MISSING, None if known == _MISSING else ""
        except DataError as exc:
            raise PolicyError(f"{location}: the policy cannot be read: {exc.message}", source=location) from None
        if data is None:
            return tag, None
        try:
            return tag, data.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(f"{location}: the policy is not UTF-8 text", source=location) from None
