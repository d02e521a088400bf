"""Audit verification and signed checkpoints.

``verify_audit`` walks every model that any source names: the registry's models,
the models with audit records, the stored chain heads and the latest checkpoint.
For each it checks

1. the hash chain itself (:func:`modelpilot.domain.audit.verify_chain`);
2. the stored head against the chain's last record (records deleted from the end);
3. the latest signed checkpoint against the chain (a chain cut below it, deleted,
   or rewritten and recomputed from an altered record onwards);
4. the registry's state against a replay of the chain (versions, aliases, alias
   history and approvals edited outside ModelPilot).

``write_checkpoint`` signs every model's verified chain end with the key the
secret store holds under :data:`CHECKPOINT_SECRET` and writes it, write-once,
under ``<data_root>/audit-checkpoints/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelpilot.domain.audit import AuditHead, ChainVerdict, verify_chain
from modelpilot.domain.audit_replay import ObservedState, environments_in, state_mismatches
from modelpilot.domain.checkpoint import CHECKPOINT_SECRET, Checkpoint, sign_checkpoint
from modelpilot.exceptions import AuditChainBroken, InvalidInput, NotFound

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from modelpilot.domain.audit import AuditRecord
    from modelpilot.ports import ArtifactStore, RegistryStore, SecretsProvider

__all__ = [
    "CHECKPOINT_FOLDER",
    "CHECKPOINT_SECRET",
    "AuditReport",
    "adopt_missing_heads",
    "latest_checkpoint",
    "verify_audit",
    "write_checkpoint",
]

CHECKPOINT_FOLDER = "audit-checkpoints"


@dataclass(frozen=True)
class AuditReport:
    """Every model's verdict, the checkpoint used (if any) and problems with the checkpoints themselves."""

    verdicts: list[ChainVerdict]
    checkpoint: str | None = None
    problems: list[str] = field(default_factory=list)
    #: each verified model's last record, the heads a new checkpoint signs
    ends: dict[str, AuditHead] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every chain verifies and the checkpoint is sound."""
        return not self.problems and all(v.ok for v in self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "ok": self.ok,
            "checkpoint": self.checkpoint,
            "problems": list(self.problems),
            "models": [v.to_dict() for v in self.verdicts],
        }


def verify_audit(
    registry: RegistryStore,
    model: str | None = None,
    *,
    checkpoint: Checkpoint | None = None,
    checkpoint_uri: str | None = None,
    checkpoint_problem: str | None = None,
    environments: Iterable[str] = (),
) -> AuditReport:
    """Verify every model's chain (or one model's) against its head, the checkpoint and the state."""
    heads = registry.audit_heads()
    anchored = checkpoint.heads if checkpoint else {}
    if model is not None:
        models = [model]
    else:
        models = sorted(set(registry.list_models()) | set(registry.audited_models()) | set(heads) | set(anchored))
    verdicts: list[ChainVerdict] = []
    ends: dict[str, AuditHead] = {}
    for name in models:
        records = registry.audit_records(name)
        verdict = verify_chain(name, records)
        if verdict.ok:
            problems = _head_problems(records, heads.get(name))
            problems += _checkpoint_problems(records, anchored.get(name), checkpoint)
            problems += state_mismatches(records, _observe(registry, name, records, environments))
            if problems:
                verdict = ChainVerdict(
                    name,
                    len(records),
                    False,
                    _first_bad(records, heads.get(name), anchored.get(name)),
                    "; ".join(problems),
                )
            elif records:
                ends[name] = AuditHead(records[-1].seq, records[-1].hash)
        verdicts.append(verdict)
    return AuditReport(verdicts, checkpoint_uri, [checkpoint_problem] if checkpoint_problem else [], ends)


def _first_bad(records: list[AuditRecord], head: AuditHead | None, anchor: AuditHead | None) -> int | None:
    """The first ``seq`` known to be missing or different, when the head or the checkpoint tells."""
    seqs = []
    if anchor is not None and (len(records) < anchor.seq or records[anchor.seq - 1].hash != anchor.hash):
        seqs.append(min(anchor.seq, len(records) + 1))
    if head is not None and head.seq > len(records):
        seqs.append(len(records) + 1)
    return min(seqs) if seqs else None


def _head_problems(records: list[AuditRecord], head: AuditHead | None) -> list[str]:
    last = records[-1] if records else None
    if head is None:
        return ["audit records exist but the model's chain head is missing (deleted)"] if last else []
    if last is None:
        return [f"the whole chain is missing: the stored head is at seq {head.seq} but no record remains"]
    if head.seq > last.seq:
        return [
            f"records {last.seq + 1}..{head.seq} were deleted: the chain ends at seq {last.seq}, its head at {head.seq}"
        ]
    if (head.seq, head.hash) != (last.seq, last.hash):
        return [f"the stored head (seq {head.seq}) does not match the chain's last record (seq {last.seq})"]
    return []


def _checkpoint_problems(
    records: list[AuditRecord], anchor: AuditHead | None, checkpoint: Checkpoint | None
) -> list[str]:
    if anchor is None or checkpoint is None:
        return []
    when = checkpoint.created_at.isoformat()
    if not records:
        return [f"the whole chain was deleted: the checkpoint of {when} signed it up to seq {anchor.seq}"]
    if len(records) < anchor.seq:
        return [f"records after seq {records[-1].seq} were deleted: the checkpoint of {when} signed seq {anchor.seq}"]
    if records[anchor.seq - 1].hash != anchor.hash:
        return [f"record {anchor.seq} differs from the checkpoint of {when}: the chain was rewritten and recomputed"]
    return []


def _observe(registry: RegistryStore, model: str, records: list[AuditRecord], envs: Iterable[str]) -> ObservedState:
    versions = registry.list_versions(model)
    environments = sorted(environments_in(records) | set(envs))
    aliases = {env: registry.get_alias(model, env) for env in environments}
    history = {env: registry.alias_history(model, env) for env in environments}
    numbers = {v.version for v in versions} | {r.to_version for r in records if r.to_version is not None}
    approvals = [a for n in sorted(numbers) for env in environments for a in registry.list_approvals(model, n, env)]
    canaries = {env: registry.get_canary(model, env) for env in environments}
    active = frozenset(c.environment for c in registry.list_canaries(active_only=True) if c.model == model)
    return ObservedState(
        versions,
        {e: a for e, a in aliases.items() if a or history[e]},
        history,
        approvals,
        {e: c for e, c in canaries.items() if c is not None},
        active,
    )


def adopt_missing_heads(
    registry: RegistryStore, *, checkpoint: Checkpoint | None = None, environments: Iterable[str] = ()
) -> dict[str, AuditHead]:
    """Give each chain written before heads were kept its current end as head; return what was adopted.

    Trust on first use, run on purpose (``audit checkpoint --adopt-missing-heads``):
    only a chain that verifies, agrees with the checkpoint and with the state is
    adopted, and an existing head is never replaced.
    """
    heads = registry.audit_heads()
    anchored = checkpoint.heads if checkpoint else {}
    adopted: dict[str, AuditHead] = {}
    for name in registry.audited_models():
        records = registry.audit_records(name)
        if name in heads or not records or not verify_chain(name, records).ok:
            continue
        if _checkpoint_problems(records, anchored.get(name), checkpoint):
            continue
        if state_mismatches(records, _observe(registry, name, records, environments)):
            continue
        head = AuditHead(records[-1].seq, records[-1].hash)
        if registry.adopt_audit_head(name, head):
            adopted[name] = head
    return adopted


def _key(secrets: SecretsProvider | None) -> bytes:
    if secrets is None:
        raise InvalidInput(f"no secret store is configured: checkpoints need the secret {CHECKPOINT_SECRET!r}")
    try:
        return secrets.get_secret(CHECKPOINT_SECRET).encode()
    except NotFound:
        raise InvalidInput(
            f"the secret {CHECKPOINT_SECRET!r} does not exist: create it (32 random bytes, hex) in the secret store"
        ) from None


def latest_checkpoint(
    artifacts: ArtifactStore, data_root: str, secrets: SecretsProvider | None
) -> tuple[Checkpoint | None, str | None, str | None]:
    """Return ``(checkpoint, its URI, problem)``: the newest (by its signed time) checkpoint that verifies.

    Every stored checkpoint is read and its signature checked, so a valid old one
    copied under a newer name cannot stand in for the newest. ``problem`` names
    checkpoints that cannot be read or whose signature does not verify under the
    current key (forged, edited, or signed by a rotated key).
    """
    found = artifacts.list(artifacts.join(data_root, CHECKPOINT_FOLDER))
    if not found:
        return None, None, None
    key = _key(secrets)
    best: tuple[Checkpoint, str] | None = None
    bad: list[str] = []
    for info in found:
        try:
            checkpoint = Checkpoint.from_dict(json.loads(artifacts.read_bytes(info.uri, max_bytes=64 * 1024 * 1024)))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            bad.append(f"checkpoint {info.uri} cannot be read: {exc}")
            continue
        if not checkpoint.signed_by(key):
            bad.append(f"checkpoint {info.uri} is not signed by the audit key (forged, edited, or the key was rotated)")
        elif best is None or checkpoint.created_at >= best[0].created_at:
            best = (checkpoint, info.uri)
    problem = "; ".join(bad) or None
    return (best[0], best[1], problem) if best else (None, None, problem)


def write_checkpoint(
    registry: RegistryStore,
    artifacts: ArtifactStore,
    data_root: str,
    secrets: SecretsProvider | None,
    now: datetime,
    environments: Iterable[str] = (),
) -> tuple[str, Checkpoint]:
    """Verify the audit, then sign every model's chain end and write it; return ``(uri, checkpoint)``.

    Raises ``AuditChainBroken`` (and signs nothing) when the audit does not verify:
    a checkpoint must never anchor a tampered chain.
    """
    key = _key(secrets)
    previous, uri, problem = latest_checkpoint(artifacts, data_root, secrets)
    report = verify_audit(
        registry, checkpoint=previous, checkpoint_uri=uri, checkpoint_problem=problem, environments=environments
    )
    if not report.ok:
        bad = [v.model for v in report.verdicts if not v.ok]
        raise AuditChainBroken(f"audit does not verify ({', '.join(bad) or problem}); no checkpoint written")
    checkpoint = sign_checkpoint(report.ends, now, key)
    name = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{checkpoint.signature[:12]}.json"
    body = json.dumps(checkpoint.to_dict(), sort_keys=True, indent=1).encode()
    target = artifacts.join(data_root, CHECKPOINT_FOLDER, name)
    return artifacts.write_bytes(target, body, content_type="application/json", write_once=True), checkpoint
