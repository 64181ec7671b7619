"""Generate the MAP manifests ``app.json`` and ``pkg.json`` from ``app.yaml``; run inside the image build.

The two manifests carry the fields that holoscan-cli's packager writes (``holoscan_cli/packager/manifest_files.py``,
filled in by ``config_reader.py`` and ``arguments.py``), so that ``monai-deploy run`` and the MONAI Deploy
platforms read this image as they read a packaged one. Each fact has one source:

* title, version, input/output formats, resources: ``app.yaml``;
* paths (``HOLOSCAN_*``): the image's environment, set once by the Dockerfile's ``ENV``;
* SDK version: the installed ``monai-deploy-app-sdk``; models: the folders under ``HOLOSCAN_MODEL_PATH``.

    python3 manifests.py --config app.yaml --out /etc/holoscan     (reads HOLOSCAN_* from the environment)
    python3 manifests.py --config app.yaml --get application.version
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
from collections.abc import Mapping
from importlib.metadata import version as installed_version
from pathlib import Path

import yaml

API_VERSION = "1.0.0"  # MAP / HAP manifest version (holoscan_cli.common.constants.DefaultValues.API_VERSION)
SDK = "monai-deploy"
SDK_PACKAGE = "monai-deploy-app-sdk"
PLATFORM_CONFIG = "dgpu"  # x86_64 workstation / server with a discrete GPU
COMMAND = ["python3"]  # + HOLOSCAN_APPLICATION: a Python application folder with __main__.py, as the packager runs it
#: Variables the packager lists in app.json's "environment", in its order.
ENVIRONMENT = ("HOLOSCAN_APPLICATION", "HOLOSCAN_INPUT_PATH", "HOLOSCAN_OUTPUT_PATH", "HOLOSCAN_WORKDIR",
               "HOLOSCAN_MODEL_PATH", "HOLOSCAN_CONFIG_PATH", "HOLOSCAN_APP_MANIFEST_PATH",
               "HOLOSCAN_PKG_MANIFEST_PATH", "HOLOSCAN_DOCS_PATH", "HOLOSCAN_LOGS_PATH")
RESOURCE_KEYS = {"cpu", "gpu", "memory", "gpuMemory", "sharedMemory", "fragments"}


class ManifestError(ValueError):
    """app.yaml or the environment does not allow a valid manifest."""


def read_config(path: Path) -> dict:
    """Read and check ``app.yaml``: the keys holoscan-cli requires, and resources it understands."""
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict):
        raise ManifestError(f"{path}: expected a mapping with 'application' and 'resources'")
    app, res = config.get("application"), config.get("resources")
    if not isinstance(app, dict) or not app.get("title") or not app.get("version"):
        raise ManifestError(f"{path}: 'application' must give a non-empty 'title' and 'version'")
    if not isinstance(res, dict):
        raise ManifestError(f"{path}: 'resources' (cpu, gpu, memory, gpuMemory) is missing")
    unknown = set(res) - RESOURCE_KEYS
    if unknown:
        raise ManifestError(f"{path}: unknown resources {sorted(unknown)}; expected some of {sorted(RESOURCE_KEYS)}")
    return config


def _relative(path: str, workdir: str) -> str:
    """``/var/holoscan/input/`` -> ``input/`` (app.json gives input and output relative to the working directory)."""
    rel = posixpath.relpath(path, workdir)
    return path if rel.startswith("..") else rel.rstrip("/") + "/"


def app_manifest(config: dict, env: Mapping[str, str], *, sdk_version: str) -> dict:
    """The application manifest (``/etc/holoscan/app.json``)."""
    missing = [k for k in ENVIRONMENT if not env.get(k)]
    if missing:
        raise ManifestError(f"environment variables {missing} are not set (the Dockerfile's ENV sets them)")
    app = config["application"]
    workdir = str(Path(env["HOLOSCAN_WORKDIR"]))
    environment = {k: str(Path(env[k])) for k in ENVIRONMENT}
    inp, out = _relative(env["HOLOSCAN_INPUT_PATH"], workdir), _relative(env["HOLOSCAN_OUTPUT_PATH"], workdir)
    environment["HOLOSCAN_INPUT_PATH"], environment["HOLOSCAN_OUTPUT_PATH"] = inp, out
    return {
        "apiVersion": API_VERSION,
        "command": json.dumps(COMMAND + [environment["HOLOSCAN_APPLICATION"]]),  # a JSON string, as packaged
        "environment": environment,
        "input": {"path": inp, "formats": app.get("inputFormats")},
        "liveness": None,
        "output": {"path": out, "formats": app.get("outputFormats")},
        "readiness": None,
        "sdk": SDK,
        "sdkVersion": sdk_version,
        "timeout": int(app.get("timeout", 0)),
        "version": str(app["version"]),
        "workingDirectory": workdir,
    }


def package_manifest(config: dict, env: Mapping[str, str], *, model_names: list[str]) -> dict:
    """The package manifest (``/etc/holoscan/pkg.json``)."""
    model_root = str(Path(env["HOLOSCAN_MODEL_PATH"]))
    return {
        "apiVersion": API_VERSION,
        "applicationRoot": str(Path(env["HOLOSCAN_APPLICATION"])),
        "modelRoot": model_root,
        "models": {name: posixpath.join(model_root, name) for name in model_names},
        "resources": config["resources"],
        "version": str(config["application"]["version"]),
        "platformConfig": PLATFORM_CONFIG,
    }


def model_names(model_root: Path) -> list[str]:
    """One model per sub-folder of the model root (as the packager's ``Models.build`` names them)."""
    return sorted(p.name for p in model_root.iterdir() if p.is_dir()) if model_root.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, required=True, help="app.yaml")
    p.add_argument("--out", type=Path, help="folder to write app.json and pkg.json into")
    p.add_argument("--get", help="print one dotted key of app.yaml (e.g. application.version) and exit")
    args = p.parse_args(argv)
    try:
        config = read_config(args.config)
        if args.get:
            value = config
            for key in args.get.split("."):
                value = value[key]
            print(value)
            return 0
        if args.out is None:
            p.error("--out or --get is required")
        env = os.environ
        app = app_manifest(config, env, sdk_version=installed_version(SDK_PACKAGE))
        pkg = package_manifest(config, env, model_names=model_names(Path(env["HOLOSCAN_MODEL_PATH"])))
    except (ManifestError, KeyError) as e:
        print(f"manifests: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "app.json").write_text(json.dumps(app, indent=2) + "\n")
    (args.out / "pkg.json").write_text(json.dumps(pkg, indent=2) + "\n")
    print(f"wrote {args.out}/app.json (version {app['version']}, sdk {app['sdkVersion']}) and pkg.json "
          f"(models {sorted(pkg['models'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
