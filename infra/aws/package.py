"""Build the Lambda zips: the core layer (modelpilot + dependencies) and the function code.

Wheels are resolved for the Lambda runtime, not for this machine::

    pip install --platform manylinux2014_<arch> --python-version 3.12 --implementation cp
                --only-binary=:all: --target <layer>/python -r shared/requirements.txt

boto3 is part of the Lambda runtime and is not packaged. Prints every zip's
packed and unpacked size; Lambda allows 250 MB unpacked for a function and all
its layers together.

Usage: python infra/aws/package.py [--arch arm64|x86_64] [--out build/aws]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}
LIMIT_MB = 250
SKIP = {"__pycache__", "tests", "test", ".pytest_cache"}


def _copy_package(source: Path, target: Path) -> None:
    # a native library built in the source tree (the drift kernel) is for this machine's Python and architecture,
    # not the runtime's: the layer leaves it out and the drift engine runs its numpy kernel (same results)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.pyd"))


def _zip(folder: Path, archive: Path) -> tuple[int, int]:
    unpacked = 0
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not SKIP.intersection(path.relative_to(folder).parts) and path.suffix != ".pyc":
                zf.write(path, path.relative_to(folder).as_posix())
                unpacked += path.stat().st_size
    return archive.stat().st_size, unpacked


def build_layer(out: Path, arch: str) -> Path:
    """Install the core's dependencies for the Lambda platform and add the modelpilot package."""
    root = out / "layer"
    site = root / "python"
    shutil.rmtree(root, ignore_errors=True)
    site.mkdir(parents=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--platform",
            PLATFORMS[arch],
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            "--only-binary=:all:",
            "--target",
            str(site),
            "-r",
            str(REPO / "shared" / "requirements.txt"),
        ],
        check=True,
    )
    _copy_package(REPO / "shared" / "modelpilot", site / "modelpilot")
    return root


def build_functions(out: Path) -> Path:
    """Copy the handler modules (they import everything else from the layer)."""
    root = out / "functions"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for path in sorted((REPO / "functions" / "aws").glob("*.py")):
        shutil.copy2(path, root / path.name)
    return root


def main(argv: list[str] | None = None) -> int:
    """Build both zips and print their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default="arm64")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "aws")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, folder in (("layer", build_layer(args.out, args.arch)), ("functions", build_functions(args.out))):
        sizes[name] = _zip(folder, args.out / f"{name}.zip")
    print(f"{'zip':<40} {'packed MB':>10} {'unpacked MB':>12}")
    for name, (packed, unpacked) in sizes.items():
        print(f"{args.out / f'{name}.zip'!s:<40} {packed / 1e6:>10.2f} {unpacked / 1e6:>12.2f}")
    total = sum(u for _, u in sizes.values()) / 1e6
    print(f"total unpacked {total:.1f} MB of Lambda's {LIMIT_MB} MB ({args.arch}, python3.12)")
    return 0 if total < LIMIT_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
