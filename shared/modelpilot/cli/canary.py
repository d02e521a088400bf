"""``modelpilot canary …``: a canary's status, the operator's actions on it, and the scheduler's tick.

Exit codes are the CLI's own (``cli._common.EXIT``): 4 when the model or its canary does not
exist, 5 when the actor may not operate it, 6 when ``--expected-revision`` is stale or another
canary is in the way (``ConcurrencyConflict`` / ``Conflict``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.cli._common import EXIT, CliError, actor, add_command, emit, make_bus, print_outcome, table

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]

_ACTIONS = {
    "pause": "hold the candidate's weight: the tick analyses nothing until it is resumed",
    "resume": "let the tick analyse and advance a paused canary again",
    "abort": "end the canary: the candidate's weight goes back to 0 %",
    "promote": "end the canary now: 100 % to the candidate and the alias moves to it",
}


def cmd_canary_status(args: argparse.Namespace) -> int:
    from modelpilot.service.queries import read_canary_status

    bus = make_bus(args)
    rows = read_canary_status(bus.services, actor(args, bus), args.model, args.env)
    if args.env and not rows:
        raise CliError(f"{args.model} has no canary in {args.env}", EXIT["not_found"])
    emit(args, rows, _status_text(rows))
    return EXIT["ok"]


def _status_text(rows: list[dict[str, Any]]) -> str:
    view = [
        {
            **row,
            "split": " ".join(f"v{v}={w}%" for v, w in row["split"].items()),
            "step": f"{row['step'] + 1}/{len(row['steps'])}" if row["steps"] else str(row["step"] + 1),
        }
        for row in rows
    ]
    columns = ["environment", "state", "stable_version", "candidate_version", "split", "step", "revision"]
    text = table(view, [*columns, "failures", "next_analysis_at"])
    for row in rows:
        analysis = row.get("last_analysis") or {}
        for comparison in analysis.get("comparisons", []):
            where = f"{row['environment']} step {analysis['step'] + 1}"
            text += f"\n  {where} {comparison['metric']}: {comparison['detail']}"
        if row["reason"]:
            text += f"\n  {row['environment']}: {row['reason']}"
    return text


def cmd_canary_action(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import ChangeCanary

    bus = make_bus(args)
    outcome = bus.handle(
        ChangeCanary(
            model=args.model,
            environment=args.env,
            action=args.canary_command,
            actor=actor(args, bus),
            reason=args.reason or "",
            expected_revision=args.expected_revision,
        )
    )
    return print_outcome(args, outcome)


def cmd_canary_tick(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import AdvanceCanaries

    bus = make_bus(args)
    outcome = bus.handle(AdvanceCanaries(actor=actor(args, bus), model=args.model, environment=args.env))
    data = outcome.to_dict()
    text = outcome.message
    for item in outcome.data["canaries"]:
        for comparison in (item.get("analysis") or {}).get("comparisons", []):
            text += f"\n  {comparison['metric']}: {comparison['detail']}"
    emit(args, data, text)
    return EXIT["ok"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``canary`` command group."""
    group = subparsers.add_parser(
        "canary",
        help="canary promotions: status, pause, resume, abort, promote, and the scheduler's tick",
        description="canary promotions: traffic steps with an analysis between them (docs/canary.md)",
    )
    sub = group.add_subparsers(dest="canary_command", metavar="ACTION", required=True)
    p = add_command(
        sub,
        "status",
        cmd_canary_status,
        "show the latest canary of a model (split, step, last analysis)",
        "modelpilot canary status churn --env prod",
        [common],
    )
    p.add_argument("model")
    p.add_argument("--env", help="only this environment")
    for action, help_ in _ACTIONS.items():
        p = add_command(
            sub,
            action,
            cmd_canary_action,
            help_,
            f"modelpilot canary {action} churn --env prod --expected-revision 3 --reason 'why'",
            [common],
        )
        p.add_argument("model")
        p.add_argument("--env", required=True, help="the environment of the canary")
        p.add_argument(
            "--expected-revision",
            type=int,
            help="act only if the canary is still at this revision (else exit 6: it changed since you looked)",
        )
        p.add_argument("--reason", help="why (kept in the audit log)")
    p = add_command(
        sub,
        "tick",
        cmd_canary_tick,
        "analyse every due canary and advance, hold or abort it (what the timers run)",
        "modelpilot canary tick",
        [common],
    )
    p.add_argument("--model", help="only this model's canaries")
    p.add_argument("--env", help="only this environment")
