"""``modelpilot package``: build a package's manifest and check it before it is uploaded.

::

    modelpilot package build dist/churn --name churn --metrics metrics.json --features features.json
    modelpilot package check dist/churn --env staging
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.cli._ci import CiReport, gate_table, md
from modelpilot.cli._common import EXIT, CliError, add_command, emit, gate_lines, make_bus

if TYPE_CHECKING:
    import argparse

    from modelpilot.package.check import PreUploadReport
    from modelpilot.policy import Policy
    from modelpilot.ports import RegistryStore

__all__ = ["register", "size_text"]


def size_text(size: int) -> str:
    """Return ``size`` bytes in the largest unit that keeps it at least 1."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover


def _tags(values: list[str] | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"invalid --tag {item!r}: write KEY=VALUE", EXIT["invalid"])
        tags[key] = value
    return tags


def cmd_build(args: argparse.Namespace) -> int:
    from modelpilot.package.builder import build_package
    from modelpilot.package.lineage import ci_lineage

    report = CiReport()
    lineage = ci_lineage(report.env)
    for key, value in (
        ("run_id", args.run_id),
        ("code_revision", args.code_revision),
        ("training_data_uri", args.training_data),
    ):
        if value:
            lineage[key] = value
    built = build_package(
        Path(args.dir),
        name=args.name,
        metrics=Path(args.metrics),
        features=Path(args.features) if args.features else None,
        reference=args.reference,
        framework=args.framework,
        description=args.description,
        tags=_tags(args.tag),
        lineage=lineage,
        exclude=tuple(args.exclude or ()),
    )
    doc = built.document
    report.output("manifest_digest", built.manifest_digest)
    report.output("manifest", str(built.manifest_path))
    lines = [
        f"built {doc['name']} in {built.root}: {len(doc['artifacts'])} artifact(s), {size_text(built.total_bytes)}",
        *(f"  {a['sha256'][:12]}  {a['size']:>12,}  {a['path']}" for a in doc["artifacts"]),
        f"manifest {built.manifest_path}",
        f"manifest digest {built.manifest_digest}",
    ]
    if doc["lineage"]:
        lines.append("lineage: " + ", ".join(f"{k}={v}" for k, v in sorted(doc["lineage"].items())))
    emit(
        args,
        {"manifest": str(built.manifest_path), "manifest_digest": built.manifest_digest, "document": doc},
        "\n".join(lines),
    )
    return EXIT["ok"]


def _incumbent_reader(args: argparse.Namespace) -> tuple[Policy, RegistryStore | None]:
    """Return the policy and (unless ``--offline``) the registry to read incumbents from."""
    if args.offline:
        from modelpilot.policy import default_policy, load_policy

        return (load_policy(args.policy) if args.policy else default_policy()), None
    bus = make_bus(args)
    return bus.services.policy, bus.services.registry


def cmd_check(args: argparse.Namespace) -> int:
    from modelpilot.package.check import pre_upload_report, verify_folder

    root = Path(args.dir)
    checked = verify_folder(root)
    manifest = checked.manifest
    policy, registry = _incumbent_reader(args)
    environments = args.env or [policy.environments[0]]
    reports: list[PreUploadReport] = []
    known = registry is not None and manifest.name in registry.list_models()
    for env in environments:
        policy.check_environment(env)
        incumbent = None
        if registry is not None and known:
            alias = registry.get_alias(manifest.name, env)
            incumbent = registry.get_version(manifest.name, alias.version) if alias else None
        reports.append(
            pre_upload_report(
                manifest,
                checked.manifest_digest,
                policy.gates_for(manifest.name, env),
                env,
                previous_environment=policy.previous_environment(env),
                incumbent=incumbent,
            )
        )
    passed = all(r.passed for r in reports)
    text = [
        f"{root}: manifest valid; {len(manifest.artifacts)} artifact(s) verified (size and sha256)",
        f"manifest digest {checked.manifest_digest}",
    ]
    if registry is None:
        text.append("offline: no incumbent read from the registry (no-regression gates skipped)")
    markdown = [
        f"### ModelPilot package check: `{md(manifest.name)}`",
        "",
        f"Manifest digest `{checked.manifest_digest}`",
    ]
    for r in reports:
        against = f"incumbent v{r.incumbent}" if r.incumbent is not None else "no incumbent"
        text += [f"{manifest.name} -> {r.environment} ({against}):", gate_lines(r.to_dict())]
        markdown += ["", f"**{md(r.environment)}** ({against})", "", gate_table(r.to_dict()["gates"])]
    verdict = (
        "every gate that can be checked before upload passes"
        if passed
        else "a gate fails: the version would be blocked"
    )
    text.append(verdict)
    markdown += ["", ("✅ " if passed else "❌ ") + verdict]
    ci = CiReport()
    ci.summary("check", "\n".join(markdown))
    data: dict[str, Any] = {
        "ok": passed,
        "manifest_digest": checked.manifest_digest,
        "reports": [r.to_dict() for r in reports],
    }
    emit(args, data, "\n".join(text))
    return EXIT["ok"] if passed else EXIT["blocked"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``package`` command group."""
    group = subparsers.add_parser(
        "package",
        help="build a package's manifest and check it before upload",
        description="build a package's manifest and check it before upload",
    )
    sub = group.add_subparsers(dest="package_command", metavar="ACTION", required=True)
    p = add_command(
        sub,
        "build",
        cmd_build,
        "write modelpilot.json for the files of a folder: digests, sizes, metrics, lineage from the CI run",
        "modelpilot package build dist/churn --name churn --metrics metrics.json --features features.json",
        [common],
    )
    p.add_argument("dir", help="the package folder (every file in it is an artifact, hidden files excepted)")
    p.add_argument("--name", required=True, help="model name (lower-case letters, digits, '.', '_', '-')")
    p.add_argument("--metrics", required=True, help="JSON object of evaluation metrics, name -> number")
    p.add_argument("--features", help="JSON feature schema: a list of features (name, type, bounds)")
    p.add_argument(
        "--reference",
        help="reference data for drift: a file (copied into reference/ unless already in the package) or a URI",
    )
    p.add_argument("--framework", default="custom", help="model framework (default: custom)")
    p.add_argument("--description")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE", help="a tag (repeatable)")
    p.add_argument("--exclude", action="append", metavar="GLOB", help="leave matching files out (repeatable)")
    p.add_argument("--run-id", help="lineage run id (default: from the CI run)")
    p.add_argument("--code-revision", help="lineage commit (default: from the CI run)")
    p.add_argument("--training-data", help="lineage: URI of the training data")
    p = add_command(
        sub,
        "check",
        cmd_check,
        "verify a built package and dry-run the gates that need no upload (thresholds, no regression)",
        "modelpilot package check dist/churn --env staging",
        [common],
    )
    p.add_argument("dir", help="the package folder")
    p.add_argument(
        "--env", action="append", help="environment whose gates to evaluate (repeatable; default: the first)"
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="do not read the registry (no incumbent: no-regression gates are skipped); policy from --policy",
    )
