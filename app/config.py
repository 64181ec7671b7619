"""Application configuration, resolved once: command line > HOLOSCAN_* environment > defaults.

Nothing deeper in the app reads the environment; operators get what they need from :class:`AppConfig`.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from operators.core.errors import ConfigError, InputDataError
from operators.core.model.predictor import BACKENDS

APP_DIR = Path(__file__).resolve().parent
#: The bundled default model folder (a folder of MONAI bundles); in the MAP, HOLOSCAN_MODEL_PATH points elsewhere.
DEFAULT_MODELS = APP_DIR.parent / "models"
DEFAULT_RULES = APP_DIR / "series_rules.json"


@dataclass(frozen=True)
class AppConfig:
    """Attributes:
    input: DICOM folder (any layout).
    output: folder the outputs are moved into once the run succeeds.
    models: a MONAI bundle, or a folder of bundles (``<name>/configs/metadata.json``).
    rules: series selection rules (JSON).
    backend: inference back end; device: ``auto``, ``cpu`` or ``cuda``.
    """

    input: Path
    output: Path
    models: Path
    rules: Path = DEFAULT_RULES
    backend: str = "auto"
    device: str = "auto"
    log_level: str = "INFO"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m app",
        description="Contour the glioblastoma GTV on a pre-operative MR study (DICOM folder in; DICOM-SEG, RTSTRUCT "
        "and a review report out). Paths default to HOLOSCAN_INPUT_PATH, HOLOSCAN_OUTPUT_PATH, HOLOSCAN_MODEL_PATH.",
    )
    p.add_argument("-i", "--input", help="DICOM study folder (HOLOSCAN_INPUT_PATH)")
    p.add_argument("-o", "--output", help="output folder (HOLOSCAN_OUTPUT_PATH)")
    p.add_argument("-m", "--models", "--model", dest="models",
                   help="model bundle or folder of bundles (HOLOSCAN_MODEL_PATH; default: the bundled model)")
    p.add_argument("--rules", help=f"series selection rules JSON (default {DEFAULT_RULES.name})")
    p.add_argument("--backend", choices=BACKENDS, help="inference back end (default auto: see README)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="inference device (default auto)")
    p.add_argument("-l", "--log-level", type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> AppConfig:
    """Combine command line and environment; check that the input exists."""
    def pick(cli, var, default=None):
        if cli:
            return cli
        if env.get(var):
            return env[var]
        return default

    inp = pick(args.input, "HOLOSCAN_INPUT_PATH")
    out = pick(args.output, "HOLOSCAN_OUTPUT_PATH")
    if not inp:
        raise ConfigError("no input folder: give -i/--input or set HOLOSCAN_INPUT_PATH")
    if not out:
        raise ConfigError("no output folder: give -o/--output or set HOLOSCAN_OUTPUT_PATH")
    config = AppConfig(
        input=Path(inp),
        output=Path(out),
        models=Path(pick(args.models, "HOLOSCAN_MODEL_PATH", str(DEFAULT_MODELS))),
        rules=Path(pick(args.rules, "GTV_SERIES_RULES", str(DEFAULT_RULES))),
        backend=pick(args.backend, "GTV_BACKEND", "auto"),
        device=pick(args.device, "GTV_DEVICE", "auto"),
        log_level=pick(args.log_level, "GTV_LOG_LEVEL", "INFO"),
    )
    if not config.input.is_dir():
        raise InputDataError(f"input folder {config.input} does not exist or is not a folder")
    if config.backend not in BACKENDS:
        raise ConfigError(f"backend {config.backend!r} (GTV_BACKEND) must be one of {BACKENDS}")
    inp_abs, out_abs = config.input.resolve(), config.output.resolve()
    if out_abs == inp_abs or inp_abs in out_abs.parents:
        raise ConfigError(f"output folder {config.output} lies inside the input folder {config.input}; "
                          "the app never writes into its input")
    return config
