"""What every command group shares: exit codes, output (tables, JSON), settings, the bus, the actor."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from modelpilot.config import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from modelpilot.service.messagebus import MessageBus, Outcome

__all__ = [
    "EXIT",
    "CliError",
    "actor",
    "add_command",
    "emit",
    "gate_lines",
    "make_bus",
    "parse_time",
    "print_outcome",
    "settings_from",
    "table",
]

EXIT = {
    "ok": 0,
    "error": 1,
    "invalid": 2,
    "blocked": 3,
    "not_found": 4,
    "not_authorized": 5,
    "conflict": 6,
    "audit_failed": 7,
    "timeout": 8,
    "rolled_back": 9,
}


class CliError(Exception):
    """An error already phrased for the user, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- output ------------------------------------------------------------------------
def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Render ``rows`` as a plain aligned text table."""
    if not rows:
        return "(nothing)"
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print ``data`` as JSON with ``--json``, else ``text``."""
    if args.json:
        print(json.dumps(data, indent=2, default=str, sort_keys=True))
    else:
        print(text)


def gate_lines(report: dict[str, Any]) -> str:
    """Render a gate report as one line per gate."""
    marks = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}
    return "\n".join(f"  [{marks[g['status']]}] {g['gate']}: {g['reason']}" for g in report.get("gates", []))


# -- plumbing ------------------------------------------------------------------------
def settings_from(args: argparse.Namespace) -> Settings:
    """Return settings from the environment with the command line's options laid over."""
    return Settings.from_env(
        backend=getattr(args, "backend", None),
        home=getattr(args, "home", None),
        policy=getattr(args, "policy", None),
        aws_endpoint_url=getattr(args, "endpoint_url", None),
        aws_region=getattr(args, "region", None),
        azure_storage_account_url=getattr(args, "azure_account_url", None),
        azure_storage_connection_setting=getattr(args, "azure_connection_setting", None),
        aws_profile=getattr(args, "profile", None),
    )


def make_bus(args: argparse.Namespace) -> MessageBus:
    """Build the bus for the selected backend."""
    from modelpilot.bootstrap import bootstrap

    return bootstrap(settings_from(args))


def actor(args: argparse.Namespace, bus: MessageBus | None = None) -> str:
    """Return who is acting.

    Locally: ``--actor``, ``$MODELPILOT_ACTOR`` or ``user:<login>``. On a cloud backend:
    the principal of the caller's credentials (AWS: ``sts get-caller-identity``
    canonicalised; Azure: the token's ``oid``); a name given with ``--actor`` is
    recorded as ``claimed:<name>`` (never an approval) unless the principal is one of
    the policy's ``delegates`` (read through ``bus``) acting for ``provider:name``.
    """
    from modelpilot.bootstrap import caller_identity
    from modelpilot.domain import identity

    claim = getattr(args, "actor", None) or Settings.from_env().actor
    principal = caller_identity(settings_from(args))
    if principal is None and not claim:
        try:
            claim = f"user:{getpass.getuser()}"
        except (KeyError, OSError):  # pragma: no cover - no login name
            claim = "user:unknown"
    delegates = bus.services.policy.delegates if bus is not None and claim and principal else []
    try:
        return identity.acting_for(principal, claim, delegates)
    except ValueError as exc:
        raise CliError(str(exc), EXIT["invalid"]) from None


def print_outcome(args: argparse.Namespace, outcome: Outcome) -> int:
    """Print a command's outcome and return its exit code."""
    data = outcome.to_dict()
    text = outcome.message
    if "gate_report" in outcome.data and (outcome.status in {"blocked", "dry_run"} or args.verbose):
        text += "\n" + gate_lines(outcome.data["gate_report"])
    if "promotion" in outcome.data:
        promo = outcome.data["promotion"]
        text += "\n" + promo["message"]
        if promo["status"] == "blocked":
            text += "\n" + gate_lines(promo.get("gate_report", {}))
    for follow in outcome.follow_ups:
        text += "\n" + follow.message
    emit(args, data, text)
    return EXIT["blocked"] if outcome.status == "blocked" else EXIT["ok"]


def parse_time(text: str) -> datetime:
    from datetime import UTC

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"invalid time {text!r}: use ISO 8601, e.g. 2026-11-26T10:00:00Z", EXIT["invalid"]) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def add_command(
    sub: Any,
    name: str,
    func: Callable[[argparse.Namespace], int],
    help_: str,
    example: str,
    parents: list[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func``; its ``--help`` shows ``help_`` and one example."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_,
        description=f"{help_}\n\nexample:\n  {example}",
        parents=parents,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(func=func)
    return parser
