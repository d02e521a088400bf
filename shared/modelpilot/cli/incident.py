"""``modelpilot incident MODEL --env ENV``: the timeline of an incident, as a review draft and an HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.cli._common import EXIT, actor, add_command, emit, make_bus, parse_time

if TYPE_CHECKING:
    import argparse

__all__ = ["cmd_incident", "register"]


def cmd_incident(args: argparse.Namespace) -> int:
    from modelpilot.service.incident_render import duration_text, write_incident
    from modelpilot.service.queries import read_incident

    bus = make_bus(args)
    timeline = read_incident(
        bus.services,
        actor(args, bus),
        args.model,
        args.env,
        start=parse_time(args.start) if args.start else None,
        end=parse_time(args.end) if args.end else None,
    )
    markdown, html = write_incident(timeline, Path(args.out))
    m = timeline["measures"]
    text = (
        f"{args.model} {args.env}: {len(timeline['events'])} events from {timeline['from']} to {timeline['to']}; "
        f"{len(timeline['rollbacks'])} rollback(s); time to detect {duration_text(m['time_to_detect_seconds'])}, "
        f"time to roll back {duration_text(m['time_to_roll_back_seconds'])}\n"
        f"review draft: {markdown}\nincident page: {html}"
    )
    emit(args, {**timeline, "files": {"markdown": str(markdown), "html": str(html)}}, text)
    return EXIT["ok"]


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``modelpilot incident``."""
    p = add_command(
        sub,
        "incident",
        cmd_incident,
        "build an incident's timeline: a post-incident review draft (Markdown) and an HTML page",
        "modelpilot incident churn --env prod --from 2026-11-26T10:00:00Z --to 2026-11-26T13:00:00Z",
        [common],
    )
    p.add_argument("model")
    p.add_argument("--env", required=True)
    p.add_argument(
        "--from", dest="start", help="ISO 8601 start (default: 30 min before the rolled-back version went live)"
    )
    p.add_argument("--to", dest="end", help="ISO 8601 end (default: 30 min after the environment's last rollback)")
    p.add_argument("--out", default=".", help="folder for the .md and .html files (default: the current folder)")
