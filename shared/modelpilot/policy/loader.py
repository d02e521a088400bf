"""The one policy loader of every backend: where the policy file is, how it is read, when it is the default.

A policy is found in one of two ways:

* **named** (``MODELPILOT_POLICY``, ``--policy``): a local file or an artifact-store URI
  (``s3://…``, ``az://…``). It must exist: a named policy that is missing is an error,
  never a silent fallback to the default.
* **by convention**: ``modelpilot.yaml`` in the home folder, the model bucket or the
  models container. When it is absent the documented default policy applies.

Files are read with the standard library; URIs through the ``ArtifactStore`` port,
so the same code serves the local folder, S3 and Blob Storage.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from modelpilot.exceptions import ArtifactMissing, PolicyError
from modelpilot.policy.document import default_policy, load_policy, load_policy_text

if TYPE_CHECKING:
    from modelpilot.policy.document import Policy
    from modelpilot.ports import ArtifactStore

__all__ = ["MAX_POLICY_BYTES", "POLICY_NAME", "PolicyLoader"]

#: the file name a backend looks for when no policy is named
POLICY_NAME = "modelpilot.yaml"
#: a policy larger than this is refused before it is parsed
MAX_POLICY_BYTES = 1024 * 1024


def _is_uri(location: str) -> bool:
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme not in {"", "file"}


class PolicyLoader:
    """Loads the policy once and keeps it for the life of the process.

    Parameters
    ----------
    artifacts:
        The store that reads URIs (``s3://``, ``az://``); local files are read directly.
    named:
        A policy named by configuration; it must exist.
    conventional:
        Where the policy is looked for when none is named; missing there means the default policy.
    """

    def __init__(self, artifacts: ArtifactStore, *, named: str | None = None, conventional: str | None = None) -> None:
        self.artifacts = artifacts
        self.named = named
        self.conventional = conventional
        self._policy: Policy | None = None
        self._lock = threading.Lock()

    @property
    def location(self) -> str | None:
        """Where the policy is read from (None: the default policy)."""
        return self.named or self.conventional

    def __call__(self) -> Policy:
        """Return the policy, reading it on first use."""
        policy = self._policy
        if policy is None:
            with self._lock:
                if self._policy is None:
                    self._policy = self._read()
                policy = self._policy
        return policy

    def _read(self) -> Policy:
        location = self.location
        if location is None:
            return default_policy()
        if not _is_uri(location):
            path = Path(location.removeprefix("file://"))
            if not self.named and not path.exists():
                return default_policy()
            return load_policy(path)
        try:
            data = self.artifacts.read_bytes(location, max_bytes=MAX_POLICY_BYTES)
        except ArtifactMissing:
            if self.named:
                raise
            return default_policy()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise PolicyError(f"{location}: the policy is not UTF-8 text", source=location) from None
        return load_policy_text(text, source=location)
