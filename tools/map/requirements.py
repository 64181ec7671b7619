"""Print the MAP's pinned Python requirements: the project's dependencies (pyproject.toml, the one place they are
pinned) plus what the image needs beyond them.

    python3 tools/map/requirements.py [pyproject.toml]          one requirement a line
    python3 tools/map/requirements.py --version PACKAGE [pyproject.toml]   the pinned version of one package
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib

# Holoscan loads libcudart.so.13 even when it runs on a CPU; a plain base image (no CUDA) gets it from this wheel
# (nvidia/cu13/lib), a CUDA base image already has it.
IMAGE_EXTRAS = ["nvidia-cuda-runtime==13.0.96"]


def requirements(pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    unpinned = [d for d in deps if "==" not in d]
    if unpinned:
        raise SystemExit(f"{pyproject}: every dependency of the MAP must be pinned with ==; not pinned: {unpinned}")
    return deps + IMAGE_EXTRAS


def pinned_version(reqs: list[str], package: str) -> str:
    for r in reqs:
        name, version = r.split("==")
        if re.sub(r"[-_.]+", "-", name.split("[")[0]).lower() == re.sub(r"[-_.]+", "-", package).lower():
            return version
    raise SystemExit(f"{package} is not among the pinned requirements")


if __name__ == "__main__":
    args = sys.argv[1:]
    package = None
    if args[:1] == ["--version"]:
        package, args = args[1], args[2:]
    reqs = requirements(Path(args[0] if args else "pyproject.toml"))
    print(pinned_version(reqs, package) if package else "\n".join(reqs))
