"""Secrets of the local backend: one file per secret in ``<home>/secrets/``, readable by its owner only.

A secret named ``modelpilot-mlflow-webhook`` is the file ``<home>/secrets/modelpilot-mlflow-webhook``; one
trailing newline is dropped (``echo`` writes one). A file that its group or others may read is refused
(``chmod 600`` it), and names that could leave the folder are refused. Values are never logged.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from modelpilot.exceptions import InvalidInput, NotAuthorized, NotFound
from modelpilot.ports import SecretsProvider

__all__ = ["FileSecrets"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class FileSecrets(SecretsProvider):
    """A :class:`SecretsProvider` over a folder of owner-only files."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"FileSecrets({str(self.folder)!r})"

    def get_secret(self, name: str) -> str:
        if not _NAME.match(name):
            raise InvalidInput(f"secret name {name!r} must be letters, digits, '.', '_' or '-'")
        path = self.folder / name
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise NotFound(f"no secret {name!r}: write it to {path} (chmod 600)", secret=name) from None
        if not stat.S_ISREG(mode):
            raise InvalidInput(f"secret {name!r} at {path} is not a file")
        if mode & 0o077:
            raise NotAuthorized(f"secret file {path} may be read by others; run chmod 600 {path}")
        text = path.read_text(encoding="utf-8")
        return text[:-1] if text.endswith("\n") else text
