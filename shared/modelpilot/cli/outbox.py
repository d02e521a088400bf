"""``modelpilot outbox relay [MODEL]``: publish the audited events a crash or a failed publish left behind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.cli._common import EXIT, CliError, add_command, emit, make_bus

if TYPE_CHECKING:
    import argparse

__all__ = ["cmd_outbox_relay", "register"]


def cmd_outbox_relay(args: argparse.Namespace) -> int:
    from modelpilot.service import outbox

    bus = make_bus(args)
    registry = bus.services.registry
    if not registry.supports_outbox:
        raise CliError("this backend's registry keeps no outbox", EXIT["error"])
    if args.model is not None and registry.audit_head(args.model) is None:
        raise CliError(f"unknown model {args.model!r}", EXIT["not_found"])
    sent = outbox.relay(bus.services, args.model)
    total = sum(sent.values())
    lines = [f"{model}: {n} event(s) published" for model, n in sent.items() if n]
    emit(args, {"published": sent, "total": total}, "\n".join(lines) or "nothing left to publish")
    return EXIT["ok"]


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``modelpilot outbox relay``."""
    group = sub.add_parser(
        "outbox",
        help="the outbox of audited events",
        description="publish audited events that were committed but not yet published (after a crash or a failed "
        "publish); each carries the id <model>#<seq>, so a consumer drops a copy",
    )
    actions = group.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    p = add_command(
        actions,
        "relay",
        cmd_outbox_relay,
        "publish every model's (or one model's) events above its published watermark",
        "modelpilot outbox relay",
        [common],
    )
    p.add_argument("model", nargs="?", help="only this model (default: every audited model)")
