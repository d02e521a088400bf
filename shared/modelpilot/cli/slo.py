"""``modelpilot slo …`` and ``modelpilot telemetry ingest``: SLO status, checks, OpenSLO, rule generators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.cli._common import EXIT, CliError, actor, add_command, emit, make_bus, print_outcome, table

if TYPE_CHECKING:
    import argparse

    from modelpilot.policy.slo import SloSpec
    from modelpilot.service.messagebus import MessageBus

__all__ = ["register"]


def _slos(bus: MessageBus, model: str | None = None) -> list[tuple[str, SloSpec]]:
    """Every (model, SLO) of the policy: models named in it and models in the registry."""
    policy = bus.services.policy
    names = {model} if model else set(policy.models) | set(bus.services.registry.list_models())
    return [(name, spec) for name in sorted(names) for spec in policy.model_policy(name).slos]


def _write(args: argparse.Namespace, text: str) -> None:
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")


def _status_row(report: dict[str, Any]) -> dict[str, Any]:
    rates = " ".join(f"{w}={'-' if b is None else f'{b:.2f}'}" for w, b in report["burn_rates"].items())
    budget = report["budget_remaining"]
    alert = report["alert"]
    return {
        **report,
        "budget_left": "-" if budget is None else f"{budget:.1%}",
        "burn_rates": rates or "-",
        "objective": f"{report['objective'] * 100:.6g}%",
        "alert": f"{alert['severity']} ({alert['long_window']}/{alert['short_window']})" if alert else "-",
    }


def cmd_slo_status(args: argparse.Namespace) -> int:
    from modelpilot.service.queries import viewable_models
    from modelpilot.service.slo.evaluation import evaluate_slos

    bus = make_bus(args)
    svc = bus.services
    if args.model and args.model not in svc.registry.list_models():
        raise CliError(f"unknown model {args.model!r}", EXIT["not_found"])
    visible = set(viewable_models(svc, actor(args, bus), args.model))
    reports = [r.to_dict() for r in evaluate_slos(svc, svc.clock(), args.model, args.env) if r.model in visible]
    text = table(
        [_status_row(r) for r in reports],
        [
            "model",
            "environment",
            "version",
            "slo",
            "objective",
            "window",
            "budget_left",
            "burn_rates",
            "alert",
            "error",
        ],
    )
    emit(args, reports, text)
    return EXIT["ok"]


def cmd_slo_check(args: argparse.Namespace) -> int:
    from modelpilot.domain.commands import CheckSlos

    bus = make_bus(args)
    return print_outcome(args, bus.handle(CheckSlos(actor=actor(args), model=args.model, environment=args.env)))


def cmd_slo_import(args: argparse.Namespace) -> int:
    import yaml

    from modelpilot.slo.openslo import import_openslo

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}", EXIT["invalid"]) from None
    models: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for model, spec in import_openslo(text, model=args.model, environment=args.env, source=args.file):
        models.setdefault(model, {"slos": []})["slos"].append(spec.model_dump(mode="json", exclude_defaults=True))
    if args.json:
        print(json.dumps({"models": models}, indent=2))
        return EXIT["ok"]
    _write(
        args,
        "# paste under the policy file's top level (merge with existing models)\n"
        + yaml.safe_dump({"models": models}, sort_keys=False),
    )
    return EXIT["ok"]


def cmd_slo_export(args: argparse.Namespace) -> int:
    from modelpilot.slo.openslo import export_openslo

    bus = make_bus(args)
    slos = _slos(bus, args.model)
    if not slos:
        raise CliError("the policy declares no SLOs", EXIT["invalid"])
    notifier = bus.services.notifier
    target = next(
        (str(v) for v in (getattr(notifier, a, None) for a in ("topic_arn", "endpoint", "path")) if v),
        type(notifier).__name__,
    )
    _write(args, export_openslo(slos, notifier=target))
    return EXIT["ok"]


def cmd_slo_rules(args: argparse.Namespace) -> int:
    from modelpilot.slo.azure_monitor import azure_monitor_template
    from modelpilot.slo.cloudwatch import cloudwatch_template
    from modelpilot.slo.documents import dump_yaml
    from modelpilot.slo.prometheus import prometheus_rules

    slos = _slos(make_bus(args), args.model)
    generators = {
        "prometheus": prometheus_rules,
        "cloudwatch": cloudwatch_template,
        "azure-monitor": azure_monitor_template,
    }
    data = generators[args.format](slos)
    _write(args, json.dumps(data, indent=2) + "\n" if args.json else dump_yaml(data))
    return EXIT["ok"]


def cmd_telemetry_ingest(args: argparse.Namespace) -> int:
    bus = make_bus(args)
    store = bus.services.telemetry_ingest
    if store is None:
        raise CliError("this backend has no local telemetry store; use --backend local", EXIT["invalid"])
    counts = store.ingest_file(args.file)
    emit(
        args,
        {"file": args.file, **counts},
        f"{args.file}: {counts['requests']} request line(s) and {counts['feedback']} feedback line(s) ingested"
        f" ({counts['duplicates']} duplicate(s) ignored)",
    )
    return EXIT["ok"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``slo`` and ``telemetry`` command groups."""
    slo = subparsers.add_parser(
        "slo",
        help="SLOs: status, check, OpenSLO import/export, alert rules",
        description="SLOs with error budgets and multiwindow burn-rate alerts",
    )
    sub = slo.add_subparsers(dest="slo_command", metavar="ACTION", required=True)
    p = add_command(
        sub,
        "status",
        cmd_slo_status,
        "show objective, error budget left and burn rates",
        "modelpilot slo status churn --json",
        [common],
    )
    p.add_argument("model", nargs="?")
    p.add_argument("--env", help="only this environment")
    p = add_command(
        sub,
        "check",
        cmd_slo_check,
        "evaluate the SLOs now: alerts, status, automatic rollback",
        "modelpilot slo check",
        [common],
    )
    p.add_argument("model", nargs="?")
    p.add_argument("--env", help="only this environment")
    p = add_command(
        sub,
        "import",
        cmd_slo_import,
        "turn OpenSLO v1 SLO/SLI YAML into a policy snippet",
        "modelpilot slo import slo.yaml --model churn --env prod",
        [common],
    )
    p.add_argument("file")
    p.add_argument("--model", help="model for SLOs without a modelpilot.io/model annotation")
    p.add_argument("--env", help="environment for SLOs without a modelpilot.io/environment annotation")
    p.add_argument("--out", help="write to this file instead of stdout")
    p = add_command(
        sub,
        "export",
        cmd_slo_export,
        "write the policy's SLOs as OpenSLO v1 YAML",
        "modelpilot slo export --out openslo.yaml",
        [common],
    )
    p.add_argument("model", nargs="?")
    p.add_argument("--out", help="write to this file instead of stdout")
    p = add_command(
        sub,
        "rules",
        cmd_slo_rules,
        "generate Prometheus rules, CloudWatch alarms (CloudFormation) or Azure Monitor alert rules (ARM)",
        "modelpilot slo rules --format prometheus --out slo-rules.yaml",
        [common],
    )
    p.add_argument("model", nargs="?")
    p.add_argument("--format", choices=["prometheus", "cloudwatch", "azure-monitor"], required=True)
    p.add_argument("--out", help="write to this file instead of stdout")

    tel = subparsers.add_parser(
        "telemetry",
        help="feed request and feedback telemetry to the local store",
        description="feed request and feedback telemetry to the local store",
    )
    tsub = tel.add_subparsers(dest="telemetry_command", metavar="ACTION", required=True)
    p = add_command(
        tsub,
        "ingest",
        cmd_telemetry_ingest,
        "ingest a JSON-lines file of requests and labelled feedback",
        "modelpilot telemetry ingest requests.jsonl",
        [common],
    )
    p.add_argument("file")
