"""``modelpilot audit verify`` and ``modelpilot audit checkpoint``: the anchored audit from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.cli._common import EXIT, CliError, emit, make_bus, table
from modelpilot.exceptions import PolicyError

if TYPE_CHECKING:
    import argparse

    from modelpilot.service.messagebus import MessageBus

__all__ = ["cmd_audit_checkpoint", "cmd_audit_verify"]


def _environments(bus: MessageBus) -> list[str]:
    """The policy's environments (their aliases are compared too); none when the policy cannot be read."""
    try:
        return list(bus.services.policy.environments)
    except PolicyError:
        return []


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Verify chains, heads, the latest signed checkpoint and the state; exit 7 on any problem."""
    from modelpilot.service.audit import latest_checkpoint, verify_audit

    bus = make_bus(args)
    svc = bus.services
    known = set(svc.registry.list_models()) | set(svc.registry.audited_models()) | set(svc.registry.audit_heads())
    checkpoint, uri, problem = latest_checkpoint(svc.artifacts, svc.data_root, svc.secrets)
    if args.model and args.model not in known and not (checkpoint and args.model in checkpoint.heads):
        raise CliError(f"unknown model {args.model!r}", EXIT["not_found"])
    report = verify_audit(
        svc.registry,
        args.model,
        checkpoint=checkpoint,
        checkpoint_uri=uri,
        checkpoint_problem=problem,
        environments=_environments(bus),
    )
    rows = [v.to_dict() for v in report.verdicts]
    bad = [v for v in report.verdicts if not v.ok]
    text = table(rows, ["model", "records", "ok", "first_bad_seq", "problem"])
    text += f"\ncheckpoint: {report.checkpoint or 'none (run `modelpilot audit checkpoint`)'}"
    text += "".join(f"\nPROBLEM: {p}" for p in report.problems)
    if report.ok:
        anchor = ", the signed checkpoint" if report.checkpoint else ""
        text += f"\naudit verified: every record intact; the chain heads{anchor} and the state agree with it"
    else:
        text += f"\naudit BROKEN in {len(bad)} model(s)" + (
            ": " + ", ".join(f"{v.model}#{v.first_bad_seq or '-'}" for v in bad) if bad else ""
        )
    emit(args, report.to_dict(), text)
    return EXIT["ok"] if report.ok else EXIT["audit_failed"]


def cmd_audit_checkpoint(args: argparse.Namespace) -> int:
    """Verify the audit, then write a signed checkpoint of every chain's end."""
    from modelpilot.service.audit import adopt_missing_heads, latest_checkpoint, write_checkpoint

    bus = make_bus(args)
    svc = bus.services
    adopted: dict[str, Any] = {}
    if args.adopt_missing_heads:
        previous, _, _ = latest_checkpoint(svc.artifacts, svc.data_root, svc.secrets)
        heads = adopt_missing_heads(svc.registry, checkpoint=previous, environments=_environments(bus))
        adopted = {m: h.seq for m, h in heads.items()}
    uri, checkpoint = write_checkpoint(
        svc.registry, svc.artifacts, svc.data_root, svc.secrets, svc.clock(), _environments(bus)
    )
    data = {"uri": uri, "adopted_heads": adopted, **checkpoint.to_dict()}
    text = "".join(f"adopted the head of {m} at seq {seq}\n" for m, seq in sorted(adopted.items()))
    text += f"checkpoint of {len(checkpoint.heads)} chain(s) signed (key {checkpoint.key_id}) at {uri}"
    emit(args, data, text)
    return EXIT["ok"]
