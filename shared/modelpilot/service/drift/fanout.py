"""Drift at scale, the data: a window's plan, its batches of files, partial profiles and their exact merge.

A drift window is planned once (:class:`WindowPlan`: the report id, the
reference profile and every data file with its size, in the order a single pass
reads them), split into :class:`Batch` es of consecutive files by size
(:func:`plan_batches`), read batch by batch into :class:`PartialProfile` s
anywhere (a process pool, Step Functions children, Durable activities) and
merged (:func:`merge_partials`).

The merge is exact where it can be: counts add as integers, so any grouping
and order gives the same counts bit for bit; moments merge by Chan's formula
and float sums add, so they agree to rounding (1e-12 relative is tested).
Partials are merged in batch order, which makes the merge commutative bit for
bit. A partial names the batches it covers: merging two that share a batch
would count its rows twice and raises ``DataError``; the same batch delivered
twice (a retried child) is taken once.

Everything here is JSON-serialisable (``to_dict`` / ``from_dict``) so plans,
batches and partials cross process and function boundaries unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from modelpilot.drift.io.stats import MAX_EXAMPLES, ReadStats
from modelpilot.drift.profile import Profile
from modelpilot.exceptions import DataError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "PARTIAL_FORMAT",
    "Batch",
    "PartialProfile",
    "PartialRunner",
    "WindowPlan",
    "merge_partials",
    "plan_batches",
]

PARTIAL_FORMAT = "modelpilot.drift.partial"
PARTIAL_VERSION = 1


@dataclass(frozen=True)
class WindowPlan:
    """What one drift window reads: every data file (URI, size) in single-pass order."""

    model: str
    environment: str
    version: int
    report_id: str
    start: str
    end: str
    data_uri: str | None
    reference_uri: str
    files: tuple[tuple[str, int], ...] = ()

    @property
    def total_bytes(self) -> int:
        """Bytes of every file in the window."""
        return sum(size for _, size in self.files)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "model": self.model,
            "environment": self.environment,
            "version": self.version,
            "report_id": self.report_id,
            "start": self.start,
            "end": self.end,
            "data_uri": self.data_uri,
            "reference_uri": self.reference_uri,
            "files": [[uri, size] for uri, size in self.files],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowPlan:
        """Parse the JSON form; raise ``DataError`` when it is not one."""
        try:
            return cls(
                str(d["model"]),
                str(d["environment"]),
                int(d["version"]),
                str(d["report_id"]),
                str(d["start"]),
                str(d["end"]),
                None if d.get("data_uri") is None else str(d["data_uri"]),
                str(d["reference_uri"]),
                tuple((str(uri), int(size)) for uri, size in d.get("files", [])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a drift window plan: {exc}") from None


@dataclass(frozen=True)
class Batch:
    """Consecutive files of a window, read by one worker; ``key`` names it in the artifact store."""

    index: int
    files: tuple[str, ...]
    size: int
    key: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"index": self.index, "files": list(self.files), "size": self.size, "key": self.key}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Batch:
        """Parse the JSON form; raise ``DataError`` when it is not one."""
        try:
            return cls(int(d["index"]), tuple(str(f) for f in d["files"]), int(d["size"]), str(d["key"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"not a drift batch: {exc}") from None


def batch_key(report_id: str, index: int, files: Iterable[str]) -> str:
    """Return the deterministic key of a batch: same window, position and files → same key."""
    text = "\n".join([report_id, str(index), *files]).encode()
    return f"{index:05d}-{hashlib.sha256(text).hexdigest()[:16]}"


def plan_batches(plan: WindowPlan, *, max_bytes: int, max_files: int = 10_000) -> list[Batch]:
    """Split a window's files, in order, into batches of at most ``max_bytes`` (or one larger file), ``max_files``."""
    if max_bytes < 1 or max_files < 1:
        raise DataError("a drift batch needs max_bytes >= 1 and max_files >= 1")
    groups: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    size = 0
    for uri, nbytes in plan.files:
        if current and (size + nbytes > max_bytes or len(current) >= max_files):
            groups.append(current)
            current, size = [], 0
        current.append((uri, nbytes))
        size += nbytes
    if current:
        groups.append(current)
    return [
        Batch(i, tuple(u for u, _ in g), sum(n for _, n in g), batch_key(plan.report_id, i, (u for u, _ in g)))
        for i, g in enumerate(groups)
    ]


@dataclass
class PartialProfile:
    """The profile and read statistics of some batches of one window.

    ``examples`` are ``(batch index, text)`` pairs, the first few in batch order,
    so merged examples are those a single pass would have kept.
    """

    report_id: str
    batches: frozenset[int]
    profile: Profile
    files: int = 0
    corrupt_files: int = 0
    rows: int = 0
    corrupt_rows: int = 0
    examples: tuple[tuple[int, str], ...] = field(default=())

    @classmethod
    def of(cls, report_id: str, index: int, profile: Profile, stats: ReadStats) -> PartialProfile:
        """Return the partial of one batch from what its read produced."""
        return cls(
            report_id,
            frozenset({index}),
            profile,
            stats.files,
            stats.corrupt_files,
            stats.rows,
            stats.corrupt_rows,
            tuple((index, text) for text in stats.examples[:MAX_EXAMPLES]),
        )

    def merge(self, other: PartialProfile) -> PartialProfile:
        """Return the partial of both (disjoint batches of the same window); the lower batches come first."""
        if other.report_id != self.report_id:
            raise DataError(f"cannot merge partials of windows {self.report_id!r} and {other.report_id!r}")
        if self.batches & other.batches:
            shared = sorted(self.batches & other.batches)
            raise DataError(f"cannot merge partials that both cover batch(es) {shared}: their rows would count twice")
        first, second = (self, other) if min(self.batches) < min(other.batches) else (other, self)
        examples = sorted(first.examples + second.examples, key=lambda e: e[0])[:MAX_EXAMPLES]
        return PartialProfile(
            self.report_id,
            first.batches | second.batches,
            first.profile.merge(second.profile),
            first.files + second.files,
            first.corrupt_files + second.corrupt_files,
            first.rows + second.rows,
            first.corrupt_rows + second.corrupt_rows,
            tuple(examples),
        )

    def stats(self) -> ReadStats:
        """Return the merged read statistics."""
        return ReadStats(
            files=self.files,
            corrupt_files=self.corrupt_files,
            rows=self.rows,
            corrupt_rows=self.corrupt_rows,
            examples=[text for _, text in self.examples],
        )

    def to_json(self) -> bytes:
        """Serialise: deterministic bytes (the same partial always writes the same object)."""
        doc = {
            "format": PARTIAL_FORMAT,
            "version": PARTIAL_VERSION,
            "report_id": self.report_id,
            "batches": sorted(self.batches),
            "files": self.files,
            "corrupt_files": self.corrupt_files,
            "rows": self.rows,
            "corrupt_rows": self.corrupt_rows,
            "examples": [list(e) for e in self.examples],
            "profile": json.loads(self.profile.to_json()),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> PartialProfile:
        """Parse a serialised partial; raise ``DataError`` when it is not one."""
        try:
            doc = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != PARTIAL_FORMAT:
                raise DataError("not a partial drift profile (missing format marker)")
            if doc.get("version") != PARTIAL_VERSION:
                raise DataError(f"unsupported partial profile version {doc.get('version')!r}")
            return cls(
                str(doc["report_id"]),
                frozenset(int(b) for b in doc["batches"]),
                Profile.from_json(json.dumps(doc["profile"])),
                int(doc["files"]),
                int(doc["corrupt_files"]),
                int(doc["rows"]),
                int(doc["corrupt_rows"]),
                tuple((int(i), str(t)) for i, t in doc["examples"]),
            )
        except DataError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"cannot read partial drift profile: {exc}") from None


class PartialRunner(Protocol):
    """Reads a window's batches somewhere else (a process pool) and returns their partials, in any order."""

    workers: int

    def __call__(self, plan: WindowPlan, batches: Sequence[Batch]) -> Iterable[PartialProfile]:
        """Return the partial of every batch."""
        ...


def merge_partials(partials: Iterable[PartialProfile]) -> PartialProfile | None:
    """Merge partials of one window in batch order; a batch delivered twice counts once.

    Two partials covering exactly the same batches are one partial delivered
    twice (at-least-once children): the first is kept. Partials that overlap
    otherwise raise ``DataError``. Returns None when there are none.
    """
    unique: dict[frozenset[int], PartialProfile] = {}
    for p in partials:
        if not p.batches:
            raise DataError("a partial drift profile must cover at least one batch")
        unique.setdefault(p.batches, p)
    ordered = sorted(unique.values(), key=lambda p: min(p.batches))
    if not ordered:
        return None
    merged = ordered[0]
    for p in ordered[1:]:
        merged = merged.merge(p)
    return merged
