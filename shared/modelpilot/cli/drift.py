"""``modelpilot drift``: reference profiles, drift batches and reports from the command line.

::

    modelpilot drift profile reference.csv --out profile.json        # profile any data set
    modelpilot drift profile --model churn --version 2               # (re)build a version's reference profile
    modelpilot drift run --model churn --env prod --window 24h       # check the last window of captures
    modelpilot drift run --model churn --env prod --data ./captures/ # check a file or folder instead
    modelpilot drift run --model churn --env prod --workers 4        # read the window over 4 processes
    modelpilot drift report <report id> --open                       # print the HTML path, open it
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from modelpilot.cli._common import EXIT, CliError, actor, add_command, emit, make_bus, settings_from, table

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["register"]


def _progress() -> Callable[[int], None] | None:
    """Return a stderr progress callback when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    seen = [0]

    def update(rows: int) -> None:
        seen[0] += rows
        ticks = min(30, seen[0].bit_length())
        print(f"\r[{'#' * ticks}{'.' * (30 - ticks)}] {seen[0]:,} rows", end="", file=sys.stderr, flush=True)

    return update


def cmd_profile(args: argparse.Namespace) -> int:
    """Build a reference profile of a data set, or of a registered version."""
    if args.model or args.version is not None:
        if not (args.model and args.version is not None):
            raise CliError("--model and --version go together", EXIT["invalid"])
        from modelpilot.domain.commands import BuildReferenceProfile

        bus = make_bus(args)
        outcome = bus.handle(
            BuildReferenceProfile(model=args.model, version=args.version, actor=actor(args), data_uri=args.data)
        )
        emit(args, outcome.to_dict(), f"{outcome.message}\nstored at {outcome.data['profile_uri']}")
        return EXIT["ok"]
    if not args.data:
        raise CliError("give the DATA to profile, or --model and --version", EXIT["invalid"])
    from pathlib import Path

    from modelpilot.drift import build_reference
    from modelpilot.drift.io import ReadStats, read_capture

    stats = ReadStats()
    profile = build_reference(
        read_capture(make_bus(args).services.artifacts, args.data, [], stats),
        bins=args.bins,
        top_k=args.top_k,
        meta={"source": args.data},
    )
    rows = [
        {"feature": name, "kind": f.kind, "values": f.n, "missing": f.missing} for name, f in profile.features.items()
    ]
    text = table(rows, ["feature", "kind", "values", "missing"])
    text += f"\n{profile.rows} rows, {stats.corrupt_rows} corrupt rows, {stats.corrupt_files} corrupt files"
    if args.out:
        Path(args.out).write_bytes(profile.to_json())
        text += f"\nprofile written to {args.out}"
    emit(
        args,
        {"rows": profile.rows, "features": rows, "corrupt_rows": stats.corrupt_rows, "out": args.out},
        text,
    )
    return EXIT["ok"]


def cmd_run(args: argparse.Namespace) -> int:
    """Run the drift batch for one model and environment (or every monitored one)."""
    from modelpilot.domain.commands import RunDriftBatch
    from modelpilot.policy.drift import check_window

    try:
        window = check_window(args.window) if args.window else None
    except ValueError as exc:
        raise CliError(f"invalid --window: {exc}", EXIT["invalid"]) from None
    if args.workers < 1:
        raise CliError(f"--workers must be at least 1 (got {args.workers})", EXIT["invalid"])
    bus = make_bus(args)
    if args.workers > 1:
        from modelpilot.cli._drift_pool import ProcessPoolRunner

        bus.services.drift_runner = ProcessPoolRunner(settings_from(args), args.workers)
    if window is None:
        from modelpilot.policy.drift import DriftPolicy

        block = bus.services.policy.model_policy(args.model).drift if args.model else None
        window = (block or DriftPolicy()).window_seconds
    end = None
    if args.end:
        from modelpilot.cli._common import parse_time as _parse_time

        end = _parse_time(args.end)
    progress = bus.services.drift_progress = _progress()
    outcome = bus.handle(
        RunDriftBatch(
            actor=actor(args),
            model=args.model,
            environment=args.env,
            window_seconds=window,
            data_uri=args.data,
            end=end,
        )
    )
    if progress:
        print(file=sys.stderr)
    reports: list[dict[str, Any]] = outcome.data.get("reports", [])
    text = outcome.message
    if reports:
        text = table(reports, ["model", "environment", "version", "severity", "drifted_features", "report_id"])
        # a failed model has an error and no report: its row says why, and there is no page to point at
        text += "".join(f"\nreport: {r['html_uri']}" for r in reports if r.get("html_uri"))
        text += "".join(
            f"\nfailed: {r['model']}/{r['environment']}: {_error_text(r['error'])}" for r in reports if r.get("error")
        )
    emit(args, outcome.to_dict(), text)
    return EXIT["ok"]


def _error_text(error: Any) -> str:
    return str(error.get("message", error)) if isinstance(error, dict) else str(error)


def cmd_report(args: argparse.Namespace) -> int:
    """Print where a report's HTML lives (and open it)."""
    from modelpilot.exceptions import UnknownReport

    bus = make_bus(args)
    store = bus.services.artifacts
    found = [
        o.uri
        for o in store.list(store.join(bus.services.data_root, "reports"))
        if o.uri.rsplit("/", 1)[-1] == f"{args.report_id}.html"
    ]
    if not found:
        raise UnknownReport(
            f"no drift report {args.report_id!r} under {bus.services.data_root}", report_id=args.report_id
        )
    html = found[0]
    if args.open:
        import webbrowser
        from pathlib import Path

        webbrowser.open(Path(html).resolve().as_uri() if "://" not in html else html)
    emit(args, {"report_id": args.report_id, "html": html, "json": html[: -len(".html")] + ".json"}, html)
    return EXIT["ok"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``drift`` command group."""
    group = subparsers.add_parser(
        "drift",
        help="data drift and quality: profiles, batches, reports",
        description="data drift and quality: profiles, batches, reports",
    )
    sub = group.add_subparsers(dest="drift_command", metavar="ACTION", required=True)
    p = add_command(
        sub,
        "profile",
        cmd_profile,
        "build a reference profile of a data set or of a registered version",
        "modelpilot drift profile reference.csv --out profile.json",
        [common],
    )
    p.add_argument("data", nargs="?", help="file or folder (CSV, JSON Lines, SageMaker capture, Parquet)")
    p.add_argument("--out", help="write the profile (JSON) here")
    p.add_argument("--model", help="store it as this model version's reference profile")
    p.add_argument("--version", type=int)
    p.add_argument("--bins", type=int, default=1000, help="fine equal-mass bins per numeric feature")
    p.add_argument("--top-k", type=int, default=100, help="categorical values kept individually")
    p = add_command(
        sub,
        "run",
        cmd_run,
        "compare a capture window with the live version's reference profile",
        "modelpilot drift run --model churn --env prod --window 24h",
        [common],
    )
    p.add_argument("--model", help="model (default: every monitored model)")
    p.add_argument("--env", help="environment (default: the monitored ones)")
    p.add_argument("--window", help="window length, e.g. 24h (default: the policy's)")
    p.add_argument("--data", help="a capture file or folder instead of the time-partitioned prefix")
    p.add_argument("--end", help="end of the window, ISO 8601 (default: now)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes that read the window's files (default 1: one pass); the report is the same",
    )
    p = add_command(
        sub,
        "report",
        cmd_report,
        "print the path of a drift report's HTML (and open it)",
        "modelpilot drift report churn-prod-20261126T100000-0a1b2c3d4e5f --open",
        [common],
    )
    p.add_argument("report_id")
    p.add_argument("--open", action="store_true", help="open it in the browser")
