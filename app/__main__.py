"""Entry point: ``python -m app -i INPUT -o OUTPUT [-m MODELS]`` (or the HOLOSCAN_* variables).

Exit 0 on success. On failure: one error line naming the file/series/tag and value at fault, a non-zero exit code
(see ``operators.core.errors``), and nothing in the output folder: the graph writes into a hidden staging folder
that is moved into place only when every output exists.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

STACK_BYTES = 32 * 1024 * 1024  # Holoscan asks for a 32 MB main-thread stack


def _ensure_stack() -> None:
    """Re-exec once with a 32 MB stack limit when the soft limit is lower and the hard limit allows it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY or soft >= STACK_BYTES or os.environ.get("GTV_STACK_REEXEC"):
        return
    if hard != resource.RLIM_INFINITY and hard < STACK_BYTES:
        return
    resource.setrlimit(resource.RLIMIT_STACK, (STACK_BYTES, hard))
    os.environ["GTV_STACK_REEXEC"] = "1"
    os.execv(sys.executable, [sys.executable, "-m", "app", *sys.argv[1:]])


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
                        force=True)
    for noisy in ("highdicom", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _publish(staging: Path, output: Path) -> list[Path]:
    """Move every file of the finished run from ``staging`` into ``output``."""
    moved = []
    for f in sorted(staging.iterdir()):
        target = output / f.name
        os.replace(f, target)
        moved.append(target)
    return moved


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HOLOSCAN_LOG_LEVEL", "WARN")
    from app.config import build_parser, resolve
    from operators.core.errors import GtvError

    args = build_parser().parse_args(argv)
    _configure_logging(args.log_level or os.environ.get("GTV_LOG_LEVEL", "INFO"))
    log = logging.getLogger("app")
    staging: Path | None = None
    created_output = False
    try:
        config = resolve(args, os.environ)
        from app.app import GtvContourApp
        from operators.core.dicom.folder import scan_folder
        from operators.core.model.predictor import load_models
        from operators.core.model.spec import find_gtv_models
        from operators.core.record import RunRecord
        from operators.core.selection.configuration import choose_configuration
        from operators.core.selection.rules import load_rules

        record = RunRecord()
        rules = load_rules(config.rules)
        specs = find_gtv_models(config.models)
        with record.stage("load"):  # headers only: which channel configuration (GTV model) this study supports
            configuration = choose_configuration(scan_folder(config.input), specs, rules)
        for channels, why in configuration.passed_over:
            record.warnings.append(f"channels {'+'.join(channels)} not used: {why}")
        with record.stage("model_load"):
            spec, predictor, brain = load_models(config.models, backend=config.backend, device=config.device,
                                                 spec=configuration.spec)
        created_output = not config.output.exists()
        config.output.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".gtv-partial-", dir=config.output))
        log.info("input %s, output %s, model %s %s", config.input, config.output, spec.name, spec.version)
        GtvContourApp(config=config, spec=spec, predictor=predictor, rules=rules, staging=staging, record=record,
                      brain=brain, study=configuration.study, configuration=configuration.decision()).run()
        if record.error is not None:
            raise record.error
        outputs = _publish(staging, config.output)
        log.info("done in %.1f s; outputs:", time.time() - record.started)
        for p in outputs:
            log.info("  %s", p)
        return 0
    except GtvError as e:
        log.error("%s: %s", type(e).__name__, e)
        return e.exit_code
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
            # A failed run leaves no trace: remove the output folder too if this run created it and it is empty.
            if created_output and staging.parent.is_dir() and not any(staging.parent.iterdir()):
                staging.parent.rmdir()


if __name__ == "__main__":
    _ensure_stack()
    sys.exit(main())
