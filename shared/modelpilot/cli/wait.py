"""``modelpilot wait``: follow a release through registration and promotions until it gets where it should.

::

    modelpilot wait churn --package dist/churn --timeout 30m       # registered and in the first environment
    modelpilot wait churn --version 7 --env staging --timeout 2h

Exit codes: 0 the version was promoted into the environment; 3 blocked by a gate that
waiting cannot change (or the upload's automatic promotion was blocked); 8 the timeout
passed (also when the version never got registered); 9 it reached the environment and
was rolled back; 2 bad arguments or an environment the policy does not define.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.cli._ci import CiReport, gate_table, md
from modelpilot.cli._common import EXIT, CliError, add_command, emit, make_bus
from modelpilot.exceptions import ModelPilotError

if TYPE_CHECKING:
    import argparse

    from modelpilot.service.release import ReleaseState

__all__ = ["register", "release_markdown"]

_DIGEST = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
_CODES = {"reached": "ok", "blocked": "blocked", "rolled_back": "rolled_back"}


def _target(args: argparse.Namespace) -> tuple[int | None, str | None]:
    """Return ``(version, manifest digest)`` from ``--version`` or ``--package``."""
    if (args.version is None) == (args.package is None):
        raise CliError("name the release with exactly one of --version or --package", EXIT["invalid"])
    if args.package is not None:
        from modelpilot.package.manifest import MANIFEST_NAME, manifest_digest, parse_manifest

        path = Path(args.package)
        path = path / MANIFEST_NAME if path.is_dir() else path
        try:
            raw = path.read_bytes()
        except OSError:
            raise CliError(f"cannot read {path}: build the package first", EXIT["invalid"]) from None
        manifest = parse_manifest(raw, source=str(path))
        if manifest.name != args.model:
            raise CliError(f"{path} is a package of {manifest.name!r}, not {args.model!r}", EXIT["invalid"])
        return None, manifest_digest(manifest)
    text = str(args.version).strip().lower()
    if text.isascii() and text.isdigit() and 0 < len(text) <= 16 and 0 < int(text) <= 2**53:
        return int(text), None
    match = _DIGEST.match(text)
    if match:
        return None, match.group(1)
    raise CliError(
        f"invalid --version {args.version!r}: a version number (1 to 2**53) or a manifest digest (sha256:<64 hex>)",
        EXIT["invalid"],
    )


def _duration(text: str, option: str) -> float:
    from modelpilot.domain.durations import parse_duration

    try:
        return float(parse_duration(text))
    except ValueError as exc:
        raise CliError(f"invalid {option}: {exc}", EXIT["invalid"]) from None


_MARK = {"reached": "✅", "pending": "⏳", "blocked": "❌", "rolled_back": "↩️", "unregistered": "⏳", "timeout": "⌛"}


def release_markdown(state: ReleaseState, verdict: str) -> str:
    """Render a release's state as the Markdown of a CI run's summary."""
    title = f"v{state.version.version}" if state.version else "not registered"
    lines = [f"### ModelPilot: `{md(state.model)}` {title} → `{md(state.target)}`: {_MARK[verdict]} {verdict}", ""]
    lines.append(md(state.message))
    if state.version is not None:
        v = state.version
        lines += [
            "",
            f"Registered as **v{v.version}** by `{md(v.registered_by)}` at {v.registered_at.isoformat()} "
            f"from `{md(v.package_uri)}`; manifest digest `{v.manifest_digest}`.",
            "",
            "| environment | this version | entered | by | revision | gates at promotion |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for step in state.steps:
            if step.entered:
                mark = "✅ entered" if step.current_version == v.version else f"✅ entered, now v{step.current_version}"
                if step.left_by is not None and step.left_by.action == "rollback":
                    mark = f"↩️ rolled back to v{step.left_by.to_version}"
                gates = ", ".join(f"{g}: {s}" for g, s in sorted(step.gates.items())) or "-"
                lines.append(
                    f"| {md(step.environment)} | {mark} | {step.entered_at.isoformat() if step.entered_at else '-'} "
                    f"| `{md(step.entered_by)}` | {step.revision} | {md(gates)} |"
                )
            else:
                now = f"runs v{step.current_version}" if step.current_version is not None else "empty"
                lines.append(f"| {md(step.environment)} | ⏳ not yet ({now}) | - | - | - | - |")
    if state.report is not None:
        lines += [
            "",
            f"Gates of **{md(state.next_environment)}** for v{state.report.version} (evaluated now, dry run):",
            "",
            gate_table(state.report.to_dict()["gates"]),
        ]
    return "\n".join(lines)


def cmd_wait(args: argparse.Namespace) -> int:
    from modelpilot.service.release import release_state

    version, digest = _target(args)
    timeout = _duration(args.timeout, "--timeout")
    interval = max(_duration(args.interval, "--interval"), 0.2)
    bus = make_bus(args)
    policy = bus.services.policy
    target = args.env or policy.environments[0]
    policy.check_environment(target)
    started = time.monotonic()
    deadline = started + timeout
    said = ""
    state: ReleaseState | None = None
    while True:
        try:
            state = release_state(
                bus.services.registry,
                policy,
                args.model,
                target,
                bus.services.clock(),
                version=version,
                digest=digest,
                mlflow=bus.services.mlflow,
            )
        except ModelPilotError as exc:
            if not exc.retryable:
                raise
            print(f"modelpilot: {exc.message}; trying again", file=sys.stderr)
        if state is not None and state.message != said:
            said = state.message
            if not args.json:
                print(f"[{time.monotonic() - started:6.1f}s] {said}", flush=True)
        if state is not None and state.done:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(interval, left))
    if state is None:
        raise CliError(f"the registry could not be read within {args.timeout}", EXIT["timeout"])
    verdict = state.verdict if state.done else "timeout"
    ci = CiReport()
    if state.version is not None:
        ci.output("version", state.version.version)
        ci.output("manifest_digest", state.version.manifest_digest)
        ci.output("package_uri", state.version.package_uri)
    ci.output("verdict", verdict)
    ci.summary("wait", release_markdown(state, verdict))
    data: dict[str, Any] = {**state.to_dict(), "verdict": verdict}
    text = f"timed out after {args.timeout}: {state.message}" if verdict == "timeout" else state.message
    if state.report is not None and verdict != "reached":
        from modelpilot.cli._common import gate_lines

        text += f"\ngates of {state.next_environment}:\n" + gate_lines(state.report.to_dict())
    emit(args, data, text)
    return EXIT[_CODES.get(verdict, "timeout")]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``wait`` command."""
    p = add_command(
        subparsers,
        "wait",
        cmd_wait,
        "follow a release through registration and promotions until it reaches an environment "
        "(exit 0 reached, 3 blocked, 8 timeout, 9 rolled back)",
        "modelpilot wait churn --package dist/churn --env staging --timeout 30m",
        [common],
    )
    p.add_argument("model")
    p.add_argument("--version", help="the version number, or the package's manifest digest (sha256:<hex>)")
    p.add_argument("--package", help="the built package folder (its manifest digest names the release)")
    p.add_argument("--env", help="the environment the release should reach (default: the policy's first)")
    p.add_argument("--timeout", default="30m", help="give up after this long (default 30m)")
    p.add_argument("--interval", default="5s", help="time between two looks at the registry (default 5s)")
