"""Bad input gives one clear error, a non-zero exit and nothing in the output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from model_fixtures import write_known_function_bundle
from test_app_end_to_end import run_app

from operators.core.model.spec import MODEL_PATH

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def known_model(tmp_path_factory) -> Path:
    return write_known_function_bundle(tmp_path_factory.mktemp("models") / "known")


def study(shared_data, name="PGBM-001/1992-04-02") -> Path:
    return shared_data / "tcia-brain-tumor-progression" / name


def error_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if " ERROR " in line]


def assert_clean_failure(proc, out: Path, *, code: int, pattern: str) -> None:
    import re

    assert proc.returncode == code, proc.stderr[-2000:]
    errors = error_lines(proc)
    assert len(errors) == 1, errors  # one error record (it may list a study's series on the lines below it)
    message = proc.stderr[proc.stderr.index(errors[0]):]
    assert re.search(pattern, message, flags=re.S), message
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_empty_folder(tmp_path, known_model):
    (tmp_path / "empty").mkdir()
    proc = run_app(tmp_path / "empty", tmp_path / "out", known_model)
    assert_clean_failure(proc, tmp_path / "out", code=2, pattern=r"InputDataError: .*empty")


def test_missing_input_folder(tmp_path, known_model):
    proc = run_app(tmp_path / "nope", tmp_path / "out", known_model)
    assert_clean_failure(proc, tmp_path / "out", code=2, pattern=r"input folder .*nope does not exist")


def test_missing_flair_lists_what_the_study_holds(tmp_path, shared_data, known_model):
    src = study(shared_data)
    for name in ("T1post", "T2reg", "MaskTumor"):
        shutil.copytree(src / name, tmp_path / "in" / name)
    proc = run_app(tmp_path / "in", tmp_path / "out", known_model)
    assert_clean_failure(proc, tmp_path / "out", code=3,
                         pattern=r"SeriesSelectionError: .*FLAIR(?=.*T2_reg)(?=.*Mask_Tumor)(?=.*T1post)")


def test_tampered_model_is_refused_before_loading(tmp_path, shared_data, known_model):
    bad = tmp_path / "model"
    shutil.copytree(known_model, bad)
    with open(bad / MODEL_PATH, "ab") as f:
        f.write(b"\0")
    proc = run_app(study(shared_data), tmp_path / "out", bad)
    assert_clean_failure(proc, tmp_path / "out", code=5, pattern=r"ModelSpecError: .*sha256 .* does not match")


def test_existing_output_folder_keeps_no_partial_files(tmp_path, known_model):
    (tmp_path / "empty").mkdir()
    (tmp_path / "out").mkdir()
    proc = run_app(tmp_path / "empty", tmp_path / "out", known_model)
    assert proc.returncode == 2
    assert list((tmp_path / "out").iterdir()) == []


def test_output_inside_input_is_refused(tmp_path, shared_data, known_model):
    src = tmp_path / "in"
    shutil.copytree(study(shared_data) / "T1post", src / "T1post")
    proc = run_app(src, src / "out", known_model)
    assert proc.returncode == 6 and "lies inside the input folder" in proc.stderr
    assert not (src / "out").exists()


def test_environment_variables_work_like_the_flags(tmp_path, shared_data, known_model):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HOLOSCAN_INPUT_PATH": str(study(shared_data)), "HOLOSCAN_OUTPUT_PATH": str(tmp_path / "o"),
           "HOLOSCAN_MODEL_PATH": str(known_model.parent)}
    p = subprocess.run([sys.executable, "-m", "app"], cwd=Path(__file__).resolve().parents[2], env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (tmp_path / "o" / "gtv_seg.dcm").is_file()
