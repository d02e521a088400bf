"""Secrets of the local backend: one file per secret in ``<home>/secrets/``, readable by its owner only.

A secret named ``modelpilot-mlflow-webhook`` is the file ``<home>/secrets/modelpilot-mlflow-webhook``; one
trailing newline is dropped (``echo`` writes one). A file that its group or others may read is refused
(``chmod 600`` it), and names that could leave the folder are refused. Values are never logged. Names listed in
``generate`` are created on first read with 32 random bytes (hex), so ``modelpilot audit checkpoint`` works on a
fresh home.
"""

from __future__ import annotations

import os
import re
import secrets as random_source
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from modelpilot.exceptions import InvalidInput, NotAuthorized, NotFound
from modelpilot.ports import SecretsProvider

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FileSecrets"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class FileSecrets(SecretsProvider):
    """A :class:`SecretsProvider` over a folder of owner-only files (mode 0600; the folder 0700).

    Parameters
    ----------
    folder:
        Where the secret files live (``<home>/secrets``).
    generate:
        Names created with a random value when first read (the audit checkpoint key).
    """

    def __init__(self, folder: str | Path, *, generate: Iterable[str] = ()) -> None:
        self.folder = Path(folder)
        self.generate = frozenset(generate)

    def __repr__(self) -> str:
        return f"FileSecrets({str(self.folder)!r})"

    def get_secret(self, name: str) -> str:
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"secret name {name!r} must be letters, digits, '.', '_' or '-'")
        path = self.folder / name
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            if name not in self.generate:
                raise NotFound(f"no secret {name!r}: write it to {path} (chmod 600)", secret=name) from None
            return self._create(path)
        if not stat.S_ISREG(mode):
            raise InvalidInput(f"secret {name!r} at {path} is not a file")
        if mode & 0o077:
            raise NotAuthorized(f"secret file {path} may be read by others; run chmod 600 {path}")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"secret {name!r} cannot be read: {exc.strerror}", secret=name) from None
        return text[:-1] if text.endswith("\n") else text

    def _create(self, path: Path) -> str:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        value = random_source.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return path.read_text(encoding="utf-8").rstrip("\n")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
        return value
