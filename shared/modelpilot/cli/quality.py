"""``modelpilot quality``: join predictions with their late labels, judge them, show where models stand.

::

    modelpilot quality run --model churn --env prod                 # the last window, and earlier ones in the lookback
    modelpilot quality run --model churn --env prod --windows 1 --end 2026-03-01T12:00Z
    modelpilot quality run --model churn --env prod --data ./captures/ --feedback ./labels.csv
    modelpilot quality status [--model churn] [--env prod]          # the quality monitor's verdicts
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from modelpilot.cli._common import EXIT, CliError, actor, add_command, emit, make_bus, parse_time, table

if TYPE_CHECKING:
    import argparse

__all__ = ["register"]


def _metric_cell(metrics: dict[str, Any], names: tuple[str, ...]) -> str:
    shown = [f"{n}={metrics[n]:.3f}" for n in names if isinstance(metrics.get(n), int | float)]
    return " ".join(shown) or "-"


def cmd_run(args: argparse.Namespace) -> int:
    """Run the quality batch."""
    from modelpilot.domain.commands import RunQualityBatch

    if args.windows is not None and args.windows < 1:
        raise CliError("--windows must be at least 1", EXIT["invalid"])
    bus = make_bus(args)
    outcome = bus.handle(
        RunQualityBatch(
            actor=actor(args),
            model=args.model,
            environment=args.env,
            end=parse_time(args.end) if args.end else None,
            windows=args.windows,
            data_uri=args.data,
            feedback_uri=args.feedback,
        )
    )
    windows: list[dict[str, Any]] = outcome.data.get("windows", [])
    rows = [
        {
            **w,
            "labelled": f"{w.get('labelled', 0)}/{w.get('predictions', 0)}",
            "metrics": _metric_cell(w.get("metrics") or {}, ("accuracy", "roc_auc", "f1", "mae", "rmse")),
        }
        for w in windows
    ]
    text = table(rows, ["model", "environment", "version", "window_end", "status", "severity", "labelled", "metrics"])
    breaches = [
        f"  {w['model']}/{w['environment']} {w.get('window_end')}: {b}" for w in windows for b in w.get("breaches", [])
    ]
    if breaches:
        text += "\nbreaches:\n" + "\n".join(breaches)
    text += "".join(f"\nreport: {w['html_uri']}" for w in windows if w.get("html_uri"))
    emit(args, outcome.to_dict(), text)
    return EXIT["ok"]


def cmd_status(args: argparse.Namespace) -> int:
    """Show the quality monitor's last verdict per model and environment (of the models the caller may view)."""
    from modelpilot.service.queries import read_monitor_status

    bus = make_bus(args)
    found = read_monitor_status(bus.services, actor(args, bus), "quality", args.model, args.env)
    text = table(
        [{**s, "window_end": s["details"].get("window_end"), "report": s["details"].get("html_uri")} for s in found],
        ["model", "environment", "version", "state", "window_end", "summary"],
    )
    emit(args, {"statuses": json.loads(json.dumps(found, default=str))}, text)
    return EXIT["ok"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``quality`` command group."""
    group = subparsers.add_parser(
        "quality",
        help="model quality: late labels joined, metrics realised and estimated, attribution drift",
        description="model quality: late labels joined, metrics realised and estimated, attribution drift",
    )
    sub = group.add_subparsers(dest="quality_command", metavar="ACTION", required=True)
    p = add_command(
        sub,
        "run",
        cmd_run,
        "join captured predictions with their labels and judge each window",
        "modelpilot quality run --model churn --env prod",
        [common],
    )
    p.add_argument("--model", help="model (default: every model with a quality policy)")
    p.add_argument("--env", help="environment (default: the monitored ones)")
    p.add_argument("--end", help="end of the last window, ISO 8601, rounded down to the window grid (default: now)")
    p.add_argument("--windows", type=int, help="how many windows back (default: the policy's lookback)")
    p.add_argument("--data", help="a capture file or folder instead of the hourly prefixes (one window)")
    p.add_argument("--feedback", help="a label file or folder instead of the hourly prefixes (one window)")
    p = add_command(
        sub,
        "status",
        cmd_status,
        "show the quality monitor's last verdict per model and environment",
        "modelpilot quality status --model churn",
        [common],
    )
    p.add_argument("--model")
    p.add_argument("--env")
