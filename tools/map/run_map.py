"""Run a MAP with plain ``docker run``, as ``monai-deploy run`` would start it.

``monai-deploy run`` (holoscan-cli ``runner/runner.py`` -> ``common/dockerutils.py::docker_run``) reads the image's
app.json and pkg.json, mounts the input and output folders at the manifest's input/output paths under its working
directory, passes the manifest's ``HOLOSCAN_*`` environment (input and output replaced by those mount points), and
asks for ``--ulimit memlock=-1`` and the NVIDIA runtime. Where memlock cannot be raised (an unprivileged Docker,
these CI machines) or the host has no GPU, this builds the same container without those two, and:

* mounts the input read-only (the app never writes into its input),
* runs as a non-root user (``--user``, default the image's own ``holoscan`` user, 1000:1000),
* gives the container no network (``--network none``): the app reads and writes files only.

    python tools/map/run_map.py IMAGE -i STUDY -o OUT [-m MODELS] [--gpus all] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import posixpath
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

STACK_BYTES = 67108864  # the runner's ulimit stack (Holoscan needs at least 32 MB)


def mount_points(app: dict) -> tuple[str, str]:
    """Input and output folders inside the container, resolved as the runner resolves them."""
    def resolve(path: str) -> str:
        path = PurePosixPath(path).as_posix()  # "input/" -> "input", as the runner writes it
        return path if posixpath.isabs(path) else posixpath.join(app["workingDirectory"], path)

    return resolve(app["input"].get("path", "input/")), resolve(app["output"].get("path", "output/"))


def run_environment(app: dict, pkg: dict, *, gpus: str | None) -> dict[str, str]:
    """The environment ``monai-deploy run`` gives the container (no UCX network interface, no health check)."""
    inp, out = mount_points(app)
    env = {"NVIDIA_DRIVER_CAPABILITIES": "all", "HOLOSCAN_HOSTING_SERVICE": "HOLOSCAN_RUN",
           "UCX_CM_USE_ALL_DEVICES": "n"}
    requested = int(pkg.get("resources", {}).get("gpu", 0))
    env["NVIDIA_VISIBLE_DEVICES"] = gpus if gpus is not None else (
        ",".join(str(i) for i in range(requested)) if requested else "all")
    for key, value in app["environment"].items():
        env[key] = {"HOLOSCAN_INPUT_PATH": inp, "HOLOSCAN_OUTPUT_PATH": out}.get(key, value)
    return env


def docker_run_argv(image: str, app: dict, pkg: dict, *, input_dir: Path, output_dir: Path,
                    models_dir: Path | None = None, user: str = "1000:1000", gpus: str | None = None,
                    name: str | None = None) -> list[str]:
    """``docker run`` arguments equivalent to ``monai-deploy run IMAGE -i input_dir -o output_dir``."""
    inp, out = mount_points(app)
    argv = ["docker", "run", "--rm", "--user", user, "--workdir", app["workingDirectory"], "--network", "none",
            "--ulimit", f"stack={STACK_BYTES}", "--ipc", "host", "--cap-add", "SYS_PTRACE"]
    if name:
        argv += ["--name", name]
    if gpus is not None:
        argv += ["--gpus", gpus]
    for key, value in run_environment(app, pkg, gpus=gpus).items():
        argv += ["-e", f"{key}={value}"]
    argv += ["-v", f"{Path(input_dir).resolve()}:{inp}:ro", "-v", f"{Path(output_dir).resolve()}:{out}"]
    if models_dir is not None:  # replaces the bundled models, read-only
        argv += ["-v", f"{Path(models_dir).resolve()}:{app['environment']['HOLOSCAN_MODEL_PATH']}:ro"]
    return argv + [image]


def read_manifests(image: str) -> tuple[dict, dict]:
    """app.json and pkg.json of an image, read by the image's own entrypoint (``show``)."""
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "show"], capture_output=True,
                          text=True, check=True)
    decoder, text = json.JSONDecoder(), proc.stdout.strip()
    app, end = decoder.raw_decode(text)
    pkg, _ = decoder.raw_decode(text[end:].lstrip())
    return app, pkg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run a MAP with docker run as `monai-deploy run` would.")
    p.add_argument("image")
    p.add_argument("-i", "--input", type=Path, required=True, help="DICOM study folder (mounted read-only)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (writable by --user)")
    p.add_argument("-m", "--models", type=Path, help="model folder replacing the bundled models")
    p.add_argument("--user", default="1000:1000", help="UID:GID to run as (default the image's holoscan user)")
    p.add_argument("--gpus", help="GPUs for docker run --gpus (e.g. all); default: CPU only")
    p.add_argument("--dry-run", action="store_true", help="print the docker run command and exit")
    args = p.parse_args(argv)
    app, pkg = read_manifests(args.image)
    cmd = docker_run_argv(args.image, app, pkg, input_dir=args.input, output_dir=args.output,
                          models_dir=args.models, user=args.user, gpus=args.gpus)
    if args.dry_run:
        print(shlex.join(cmd))
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
