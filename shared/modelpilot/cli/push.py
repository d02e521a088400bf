"""``modelpilot push``: upload a built package, the manifest last.

::

    modelpilot push dist/churn s3://acme-models/models/churn/3f2a9c1/
    modelpilot push dist/churn az://models/churn/3f2a9c1/
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.cli._ci import CiReport
from modelpilot.cli._common import EXIT, CliError, add_command, emit, settings_from
from modelpilot.cli.package import size_text

if TYPE_CHECKING:
    import argparse

    from modelpilot.ports import UploadResult

__all__ = ["backend_for", "register"]

_SCHEMES = {"s3://": "aws", "az://": "azure"}


def backend_for(destination: str) -> str:
    """Return the backend that owns ``destination``'s URI scheme (a path: local)."""
    for scheme, backend in _SCHEMES.items():
        if destination.startswith(scheme):
            return backend
    if "://" in destination and not destination.startswith("file://"):
        raise CliError(
            f"cannot push to {destination}: use s3://bucket/prefix/, az://container/prefix/ or a folder",
            EXIT["invalid"],
        )
    return "local"


def _line(name: str, result: UploadResult) -> str:
    if result.status == "skipped":
        detail = "already there with this sha256"
    elif result.status == "resumed":
        detail = f"{result.parts_sent} part(s) sent, {result.parts_reused} kept from the interrupted upload"
    else:
        detail = f"{result.parts_sent} part(s)" if result.parts_sent > 1 else "sent"
    return f"  {result.status:<8} {name} ({size_text(result.size)}, {detail})"


def cmd_push(args: argparse.Namespace) -> int:
    from modelpilot.bootstrap import build_uploader
    from modelpilot.package.push import push_package

    backend = backend_for(args.destination)
    if args.backend and args.backend != backend:
        raise CliError(f"{args.destination} belongs to the {backend} backend, not {args.backend}", EXIT["invalid"])
    settings = dataclasses.replace(settings_from(args), backend=backend)
    uploader = build_uploader(settings)
    base = args.destination.rstrip("/")

    def progress(name: str, result: UploadResult) -> None:
        if not args.json:
            print(_line(name, result), flush=True)

    report = push_package(uploader, Path(args.dir), args.destination, on_file=progress)
    ci = CiReport()
    ci.output("package_uri", report.destination)
    ci.output("manifest_uri", report.manifest_uri)
    summary = (
        f"pushed {report.model} to {report.destination}/ (manifest last): "
        f"{report.count('uploaded')} uploaded, {report.count('resumed')} resumed, "
        f"{report.count('skipped')} already there; {size_text(report.bytes_sent)} sent"
    )
    if backend == "aws" and not base[len("s3://") :].partition("/")[2].startswith("models/"):
        print("note: the upload function registers only packages under s3://<model bucket>/models/", file=sys.stderr)
    if backend == "azure" and base[len("az://") :].partition("/")[0] != settings.azure_container:
        print(
            f"note: the upload function registers only packages in the {settings.azure_container} container",
            file=sys.stderr,
        )
    data: dict[str, Any] = report.to_dict()
    emit(args, data, summary)
    return EXIT["ok"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``push`` command."""
    p = add_command(
        subparsers,
        "push",
        cmd_push,
        "upload a built package (manifest last; resumable; files already there are not sent again)",
        "modelpilot push dist/churn s3://acme-models/models/churn/3f2a9c1/",
        [common],
    )
    p.add_argument("dir", help="the package folder (built with 'modelpilot package build')")
    p.add_argument("destination", help="s3://bucket/models/<name>/<id>/, az://container/<name>/<id>/ or a folder")
