"""The quality verdict on real studies: a good one passes as ``ok``; studies the app can process but should not trust
(a pre-contrast T1 labelled post-contrast, a FLAIR 10 mm off, a study that covers half the brain) are flagged, and
every place a reviewer looks shows it: the log, the report, the review picture's banner, the SEG's
SeriesDescription and the RTSTRUCT's StructureSetLabel. None of them blocks the output."""

from __future__ import annotations

import json
import shutil
import subprocess

import input_variants as iv
import numpy as np
import pydicom
import pytest
from PIL import Image
from test_app_end_to_end import OUTPUTS, run_app

from operators.core.writers.report import BANNER

pytestmark = pytest.mark.integration

CASES = {
    # name: (builder, expected flag, expected verdict)
    "good": (None, None, "ok"),
    "t1pre_as_t1c": (lambda plain, dst, shared: iv.t1pre_as_t1c(plain, dst, shared / iv.STUDY), "NO_CONTRAST_RECORDED",
                     "review"),
    "flair_shifted_10mm": (lambda plain, dst, shared: iv.shifted_series(plain, dst, shift_mm=10.0),
                           "MISREGISTERED_FLAIR", "unreliable"),
    "upper_half": (lambda plain, dst, shared: iv.upper_slices(plain, dst, 0.5), "BRAIN_AT_FOV_EDGE", "review"),
}


@pytest.fixture(scope="module")
def plain(shared_data, tmp_path_factory):
    return iv.plain_copy(shared_data, tmp_path_factory.mktemp("plain") / "study")


@pytest.fixture(scope="module", params=sorted(CASES))
def verdict_run(request, plain, shared_data, tmp_path_factory):
    build, flag, verdict = CASES[request.param]
    study = plain if build is None else build(plain, tmp_path_factory.mktemp(request.param) / "study", shared_data)
    out = tmp_path_factory.mktemp("out") / "result"
    proc = run_app(study, out, None)
    return {"name": request.param, "flag": flag, "verdict": verdict, "out": out, "proc": proc}


def test_the_verdict_never_blocks_the_output(verdict_run):
    assert verdict_run["proc"].returncode == 0, verdict_run["proc"].stderr[-3000:]
    assert {p.name for p in verdict_run["out"].iterdir()} == OUTPUTS


def test_the_report_carries_the_verdict_and_its_flag(verdict_run):
    report = json.loads((verdict_run["out"] / "gtv_report.json").read_text())
    quality = report["quality"]
    assert set(quality) == {"verdict", "flags"}
    assert quality["verdict"] == verdict_run["verdict"]
    codes = [f["code"] for f in quality["flags"]]
    if verdict_run["flag"] is None:
        assert codes == []
    else:
        assert verdict_run["flag"] in codes
        for f in quality["flags"]:
            assert set(f) == {"code", "message", "value", "limit"} and f["message"]
    # every signal is reported, with a value or null where it cannot be measured
    for signal in ("slice_spacing_mm", "brain_cm3", "brain_edge_fraction", "registration_offset_mm_FLAIR",
                   "gtv_cm3", "gtv_components", "gtv_surface_fraction", "gtv_enhancement", "unsure_fraction"):
        assert signal in report["quality_signals"]


def test_one_warning_line_per_flag(verdict_run):
    report = json.loads((verdict_run["out"] / "gtv_report.json").read_text())
    lines = [line for line in verdict_run["proc"].stderr.splitlines() if "WARNING" in line and "quality " in line]
    assert len(lines) == len(report["quality"]["flags"])
    for flag, line in zip(report["quality"]["flags"], lines):
        assert flag["code"] in line


def test_dicom_objects_show_the_verdict(verdict_run):
    seg = pydicom.dcmread(verdict_run["out"] / "gtv_seg.dcm", stop_before_pixels=True)
    rt = pydicom.dcmread(verdict_run["out"] / "gtv_rtstruct.dcm")
    tag = {"ok": "", "review": "REVIEW", "unreliable": "UNRELIABLE"}[verdict_run["verdict"]]
    if tag:
        assert tag in seg.SeriesDescription and tag in rt.SeriesDescription
        assert rt.StructureSetLabel == f"GTV {tag}"
        assert verdict_run["flag"] in rt.StructureSetDescription
    else:
        assert seg.SeriesDescription == "GTV auto-segmentation (UNAPPROVED)"
        assert rt.StructureSetLabel == "AUTO GTV"
    assert len(seg.SeriesDescription) <= 64 and len(rt.StructureSetLabel) <= 16
    if shutil.which("dciodvfy"):
        for name in ("gtv_seg.dcm", "gtv_rtstruct.dcm"):
            proc = subprocess.run(["dciodvfy", str(verdict_run["out"] / name)], capture_output=True, text=True)
            errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]
            assert errors == [], f"{name}: {errors}"


def test_review_picture_banner_has_the_verdicts_colour(verdict_run):
    with Image.open(verdict_run["out"] / "gtv_review.png") as png:
        rgb = np.asarray(png.convert("RGB")).astype(int)
    top = rgb[: rgb.shape[0] // 12]
    counts = {v: int((np.abs(top - np.array(c)).sum(axis=-1) < 30).sum()) for v, c in BANNER.items()}
    assert max(counts, key=counts.get) == verdict_run["verdict"], counts
    assert counts[verdict_run["verdict"]] > 500
