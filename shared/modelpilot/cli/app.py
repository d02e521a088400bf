"""The ``modelpilot`` command: operators drive the same handlers the functions run.

Human-readable tables by default, ``--json`` for machines. Expected errors go to
stderr as one line (no traceback) with an exit code that says what happened:

====  ==========================================================
code  meaning
====  ==========================================================
0     done (or nothing to do: the command was already applied)
1     unexpected or transient error (retry may help)
2     invalid input: bad arguments, package, policy or payload
3     promotion blocked by a gate
4     not found: unknown model, version or report
5     not authorised (e.g. four-eyes)
6     conflict: the alias moved concurrently
7     audit chain verification failed
8     ``wait``: the timeout passed before the release got where it should
9     ``wait``: the version reached the environment and was rolled back
====  ==========================================================
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from modelpilot.cli._common import (
    EXIT,
    CliError,
    actor,
    add_command,
    emit,
    make_bus,
    parse_time,
    print_outcome,
    table,
)
from modelpilot.cli.audit import cmd_audit_checkpoint, cmd_audit_verify
from modelpilot.exceptions import (
    Conflict,
    InvalidInput,
    ModelPilotError,
    NotAuthorized,
    NotFound,
)

if TYPE_CHECKING:
    from collections.abc import Sequence


__all__ = ["EXIT", "add_command", "main"]

#: modules that add command groups: each has ``register(subparsers, common)``
PLUGINS = [
    "modelpilot.cli.drift",
    "modelpilot.cli.slo",
    "modelpilot.cli.incident",
    "modelpilot.cli.quality",
    "modelpilot.cli.package",
    "modelpilot.cli.push",
    "modelpilot.cli.wait",
    "modelpilot.cli.serve",
    "modelpilot.cli.outbox",
    "modelpilot.cli.canary",
]


# -- commands ------------------------------------------------------------------------
def cmd_register(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import RegisterModel

    bus = make_bus(args)
    return print_outcome(
        args,
        bus.handle(
            RegisterModel(
                package_uri=args.package, actor=actor(args, bus), auto_promote=args.promote, trigger=args.trigger
            )
        ),
    )


def cmd_promote(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import PromoteModel

    bus = make_bus(args)
    return print_outcome(
        args,
        bus.handle(
            PromoteModel(
                model=args.model,
                environment=args.env,
                actor=actor(args, bus),
                version=args.version,
                reason=args.reason or "",
                dry_run=args.dry_run,
            )
        ),
    )


def cmd_approve(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import ApproveModel

    bus = make_bus(args)
    return print_outcome(
        args,
        bus.handle(
            ApproveModel(
                model=args.model,
                version=args.version,
                environment=args.env,
                approver=actor(args, bus),
                comment=args.comment or "",
            )
        ),
    )


def cmd_reject(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import RejectModel

    bus = make_bus(args)
    return print_outcome(
        args,
        bus.handle(RejectModel(model=args.model, version=args.version, actor=actor(args, bus), reason=args.reason)),
    )


def cmd_rollback(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import RollbackModel

    bus = make_bus(args)
    return print_outcome(
        args,
        bus.handle(
            RollbackModel(
                model=args.model,
                environment=args.env,
                actor=actor(args, bus),
                reason=args.reason,
                to_version=args.to_version,
                from_version=args.from_version,
            )
        ),
    )


def cmd_status(args: argparse.Namespace) -> int:
    from modelpilot.service.queries import read_status

    bus = make_bus(args)
    rows = read_status(bus.services, actor(args, bus), args.model)
    shown = [{**r, "canary": _canary_cell(r["canary"])} for r in rows]
    emit(
        args,
        rows,
        table(
            shown,
            [
                "model",
                "environment",
                "version",
                "revision",
                "latest_version",
                "updated_by",
                "updated_at",
                "drift",
                "slo",
                "canary",
            ],
        ),
    )
    return EXIT["ok"]


def _canary_cell(canary: dict[str, Any] | None) -> str | None:
    """``v2 25% running`` for an active canary, None (shown as -) otherwise."""
    if canary is None:
        return None
    return f"v{canary['candidate_version']} {canary['weight']}% {canary['state']}"


def cmd_history(args: argparse.Namespace) -> int:
    from modelpilot.service.queries import read_history, read_version_at

    bus = make_bus(args)
    bus.services.policy.check_environment(args.env)
    reader = actor(args, bus)
    if args.at:
        when = parse_time(args.at)
        version = read_version_at(bus.services, reader, args.model, args.env, when)
        data = {"model": args.model, "environment": args.env, "at": when.isoformat(), "version": version}
        text = f"{args.model} {args.env} at {when.isoformat()}: " + (
            f"v{version}" if version is not None else "no version yet"
        )
        emit(args, data, text)
        return EXIT["ok"]
    rows = read_history(bus.services, reader, args.model, args.env)
    emit(args, rows, table(rows, ["revision", "action", "from_version", "to_version", "actor", "at", "reason"]))
    return EXIT["ok"]


def cmd_audit_show(args: argparse.Namespace) -> int:
    from modelpilot.service.queries import read_audit

    bus = make_bus(args)
    rows = read_audit(bus.services, actor(args, bus), args.model)
    emit(
        args,
        rows,
        table(rows, ["seq", "timestamp", "actor", "action", "environment", "from_version", "to_version", "reason"]),
    )
    return EXIT["ok"]


def cmd_policy_validate(args: argparse.Namespace) -> int:
    from modelpilot.policy import load_policy

    policy = load_policy(args.file)
    emit(
        args,
        {"ok": True, "file": args.file, "environments": policy.environments, "models": sorted(policy.models)},
        f"{args.file}: valid (environments {' -> '.join(policy.environments)}; "
        f"{len(policy.models)} model-specific block(s))",
    )
    return EXIT["ok"]


def cmd_policy_schema(args: argparse.Namespace) -> int:
    from modelpilot.policy import policy_schema

    print(json.dumps(policy_schema(), indent=2))
    return EXIT["ok"]


def cmd_manifest_schema(args: argparse.Namespace) -> int:
    from modelpilot.package.manifest import manifest_schema

    print(json.dumps(manifest_schema(), indent=2))
    return EXIT["ok"]


def cmd_demo(args: argparse.Namespace) -> int:
    from modelpilot.config import ENV, app_setting
    from modelpilot.demo import run_demo

    home = args.home or app_setting(ENV.HOME)
    if home and os.path.exists(home) and not os.path.isdir(home):
        raise CliError(f"home {home} is not a folder: pass --home DIR", EXIT["invalid"])
    return run_demo(home=home, as_json=args.json)


# -- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="home folder of the local backend (default $MODELPILOT_HOME or ./.modelpilot)")
    common.add_argument("--backend", choices=["local", "aws", "azure"], help="where the registry lives (default local)")
    common.add_argument("--policy", help="policy file (default $MODELPILOT_POLICY or <home>/modelpilot.yaml)")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    common.add_argument("--verbose", "-v", action="store_true", help="print every gate, not only failures")
    common.add_argument(
        "--actor",
        help=(
            "who is acting locally (default $MODELPILOT_ACTOR or user:<login>); "
            "on aws/azure the credentials say, and this name is recorded as claimed:NAME"
        ),
    )
    common.add_argument("--endpoint-url", help="AWS endpoint override (an emulator)")
    common.add_argument("--region", help="AWS region (default from the usual AWS settings)")
    common.add_argument("--profile", help="AWS profile")
    common.add_argument(
        "--azure-account-url",
        metavar="URL",
        help="Azure Storage blob endpoint (https://<account>.blob.core.windows.net), signed in "
        "with DefaultAzureCredential",
    )
    common.add_argument(
        "--azure-connection-setting",
        metavar="ENV_NAME",
        help="name of the environment variable holding an Azure Storage connection string (Azurite, local runs)",
    )

    parser = argparse.ArgumentParser(
        prog="modelpilot",
        description="Take ML models from upload to production and keep them healthy there.",
        epilog="Run 'modelpilot demo' to see the whole lifecycle in a throwaway home.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = add_command(
        sub,
        "register",
        cmd_register,
        "verify a model package and register it as a new version",
        "modelpilot register ./packages/churn-v3 --promote",
        [common],
    )
    p.add_argument("package", help="package folder (or its modelpilot.json)")
    p.add_argument("--promote", action="store_true", help="then promote to the first environment if the gates pass")
    p.add_argument("--trigger", help="id of the event that caused this (recorded in the audit log)")

    p = add_command(
        sub,
        "promote",
        cmd_promote,
        "evaluate the gates and promote a version into an environment",
        "modelpilot promote churn --env prod --version 3 --reason 'weekly release'",
        [common],
    )
    p.add_argument("model")
    p.add_argument("--env", required=True, help="target environment")
    p.add_argument("--version", type=int, help="version (default: the one in the previous environment)")
    p.add_argument("--reason", help="why (recorded in the audit log)")
    p.add_argument("--dry-run", action="store_true", help="evaluate the gates only")

    p = add_command(
        sub,
        "approve",
        cmd_approve,
        "approve a version for an environment (four-eyes)",
        "modelpilot approve churn 3 --env prod --actor bob@example.com",
        [common],
    )
    p.add_argument("model")
    p.add_argument("version", type=int)
    p.add_argument("--env", required=True)
    p.add_argument("--comment")

    p = add_command(
        sub,
        "reject",
        cmd_reject,
        "mark a version rejected so it can never be promoted",
        "modelpilot reject churn 4 --reason 'leaks labels'",
        [common],
    )
    p.add_argument("model")
    p.add_argument("version", type=int)
    p.add_argument("--reason", required=True)

    p = add_command(
        sub,
        "rollback",
        cmd_rollback,
        "roll an environment back to its last healthy version",
        "modelpilot rollback churn --env prod --reason 'error spike after release'",
        [common],
    )
    p.add_argument("model")
    p.add_argument("--env", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--to", dest="to_version", type=int, help="explicit target version")
    p.add_argument(
        "--from", dest="from_version", type=int, help="only roll back if the environment still runs this version"
    )

    p = add_command(
        sub,
        "status",
        cmd_status,
        "show which version runs in every environment",
        "modelpilot status churn --json",
        [common],
    )
    p.add_argument("model", nargs="?")

    p = add_command(
        sub,
        "history",
        cmd_history,
        "show an alias's history, or the version live at a time",
        "modelpilot history churn --env prod --at 2026-11-20T12:00:00Z",
        [common],
    )
    p.add_argument("model")
    p.add_argument("--env", required=True)
    p.add_argument("--at", help="ISO 8601 time: print the version live then")

    audit = sub.add_parser(
        "audit", help="inspect and verify the audit log", description="inspect and verify the hash-chained audit log"
    )
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    p = add_command(
        audit_sub,
        "verify",
        cmd_audit_verify,
        "verify every hash chain, its head, the signed checkpoint and the state; name what is wrong",
        "modelpilot audit verify",
        [common],
    )
    p.add_argument("model", nargs="?")
    p = add_command(
        audit_sub,
        "checkpoint",
        cmd_audit_checkpoint,
        "verify the audit, then write a checkpoint of every chain's end signed with the audit key",
        "modelpilot audit checkpoint",
        [common],
    )
    p.add_argument(
        "--adopt-missing-heads",
        action="store_true",
        help="first give chains written before heads were kept their current end as head (only chains that verify)",
    )
    p = add_command(
        audit_sub, "show", cmd_audit_show, "list a model's audit records", "modelpilot audit show churn", [common]
    )
    p.add_argument("model")

    pol = sub.add_parser(
        "policy",
        help="validate the policy file or print its JSON Schema",
        description="validate the policy file or print its JSON Schema",
    )
    pol_sub = pol.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    p = add_command(
        pol_sub,
        "validate",
        cmd_policy_validate,
        "check a policy file",
        "modelpilot policy validate modelpilot.yaml",
        [common],
    )
    p.add_argument("file")
    add_command(
        pol_sub,
        "schema",
        cmd_policy_schema,
        "print the policy JSON Schema",
        "modelpilot policy schema > policy.json",
        [common],
    )

    man = sub.add_parser(
        "manifest",
        help="print the package manifest's JSON Schema",
        description="print the package manifest's JSON Schema",
    )
    man_sub = man.add_subparsers(dest="manifest_command", metavar="ACTION", required=True)
    add_command(
        man_sub,
        "schema",
        cmd_manifest_schema,
        "print the manifest JSON Schema",
        "modelpilot manifest schema > modelpilot.schema.json",
        [common],
    )

    add_command(
        sub,
        "demo",
        cmd_demo,
        "run the whole lifecycle on synthetic models in a throwaway home",
        "modelpilot demo --home ./demo-home",
        [common],
    )

    for name in PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from modelpilot.telemetry import flush, logs_to_stderr

    try:
        with logs_to_stderr():
            code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return code
    except CliError as exc:
        print(f"modelpilot: error: {exc}", file=sys.stderr)
        return exc.code
    except ModelPilotError as exc:
        if getattr(args, "json", False):
            print(json.dumps(exc.to_dict(), default=str), file=sys.stderr)
        else:
            print(f"modelpilot: error: {exc.message}", file=sys.stderr)
        return _code_for(exc)
    except KeyboardInterrupt:
        print("modelpilot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _closed_pipe()
    finally:
        flush()  # spans of the command reach the collector before the process ends


def _closed_pipe() -> int:
    """The reader of stdout went away (``modelpilot manifest schema | head``): stop quietly, like ``cat``.

    stdout is pointed at the null device so the interpreter's own flush at exit cannot fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # pragma: no cover - stdout is not a real file
        pass
    return 128 + 13  # SIGPIPE, as a shell reports it


def _code_for(exc: ModelPilotError) -> int:
    from modelpilot.exceptions import AuditChainBroken

    if isinstance(exc, InvalidInput):
        return EXIT["invalid"]
    if isinstance(exc, NotFound):
        return EXIT["not_found"]
    if isinstance(exc, NotAuthorized):
        return EXIT["not_authorized"]
    if isinstance(exc, Conflict):
        return EXIT["conflict"]
    if isinstance(exc, AuditChainBroken):
        return EXIT["audit_failed"]
    return EXIT["error"]
