"""Secrets of the local backend: one file per secret in a folder of the home, readable by its owner only.

Names are plain (letters, digits, ``-``, ``_``, ``.``), so a name can never reach
outside the folder. Names listed in ``generate`` are created on first read with
32 random bytes (hex), so ``modelpilot audit checkpoint`` works on a fresh home.
"""

from __future__ import annotations

import os
import re
import secrets as random_source
from pathlib import Path
from typing import TYPE_CHECKING

from modelpilot.exceptions import InvalidInput, NotFound
from modelpilot.ports import SecretsProvider

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["KeyFileSecrets"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class KeyFileSecrets(SecretsProvider):
    """A :class:`SecretsProvider` reading ``<folder>/<name>`` (mode 0600; the folder 0700).

    Parameters
    ----------
    folder:
        Where the key files live (``<home>/keys``).
    generate:
        Names created with a random value when first read.
    """

    def __init__(self, folder: str | Path, *, generate: Iterable[str] = ()) -> None:
        self.folder = Path(folder)
        self.generate = frozenset(generate)

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise InvalidInput(f"secret name {name!r} must be letters, digits, '.', '-' or '_'")
        return self.folder / name

    def get_secret(self, name: str) -> str:
        path = self._path(name)
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            if name not in self.generate:
                raise NotFound(f"no secret {name!r} in {self.folder}", name=name) from None
        except OSError as exc:
            raise InvalidInput(f"secret {name!r} cannot be read: {exc.strerror}", name=name) from None
        return self._create(path)

    def _create(self, path: Path) -> str:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        value = random_source.token_hex(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return path.read_text(encoding="utf-8").strip()
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
        return value
