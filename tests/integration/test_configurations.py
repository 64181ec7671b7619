"""Studies as they come: the app contours with the richest channel configuration the study supports (a GTV model
per configuration in the models folder), says which and why, and fails cleanly only without a T1 post-contrast
series. No GTV found is a valid outcome. Real TCIA studies; the GTV models here are known-function bundles (a
bright-T1c detector for each configuration), so that what is tested is the choice, not a network."""

from __future__ import annotations

import json
import shutil
import subprocess

import highdicom as hd
import input_variants as iv
import pydicom
import pytest
from model_fixtures import write_known_function_bundle
from test_app_end_to_end import OUTPUTS, run_app
from test_app_failures import assert_clean_failure

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    write_known_function_bundle(root / "with_flair", channels=("T1c", "FLAIR"))
    alone = write_known_function_bundle(root / "t1c_alone", channels=("T1c",))
    meta = json.loads((alone / "configs" / "metadata.json").read_text())
    meta["name"] = "known_function_t1c_alone"
    meta["quality"] = {**meta.get("quality", {}), "fallback": "no usable FLAIR: the fallback model ran"}
    (alone / "configs" / "metadata.json").write_text(json.dumps(meta))
    return root


@pytest.fixture(scope="module")
def plain(shared_data, tmp_path_factory):
    return iv.plain_copy(shared_data, tmp_path_factory.mktemp("plain") / "study")


def _run(study, tmp_path, models):
    out = tmp_path / "out"
    proc = run_app(study, out, models)
    return proc, out, (json.loads((out / "gtv_report.json").read_text()) if proc.returncode == 0 else None)


def test_t1c_and_flair_use_the_richest_model(plain, tmp_path, models):
    proc, out, report = _run(plain, tmp_path, models)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report["configuration"]["channels"] == ["T1c", "FLAIR"]
    assert report["configuration"]["passed_over"] == []
    assert report["model"]["name"] == "known_function_bright_t1c"
    assert "FALLBACK_MODEL" not in [f["code"] for f in report["quality"]["flags"]]


def test_without_flair_the_t1c_model_runs_and_says_why(plain, tmp_path, models):
    study = iv.edited(plain, tmp_path / "study", lambda rel, ds: None if rel.parts[0] in ("FLAIRreg", "T2reg") else ds)
    proc, out, report = _run(study, tmp_path, models)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert report["configuration"]["channels"] == ["T1c"]
    assert report["model"]["name"] == "known_function_t1c_alone"
    [passed] = report["configuration"]["passed_over"]
    assert passed["channels"] == ["T1c", "FLAIR"] and "no series matches channel 'FLAIR'" in passed["why"]
    assert any("channels T1c+FLAIR not used" in w for w in report["warnings"])
    assert "WARNING" in proc.stderr and "contouring with T1c" in proc.stderr
    assert [s["channel"] for s in report["decisions"]["series"]] == ["T1c"]
    # the fallback model flags its contour for review, in the report and in the RTSTRUCT a planning system shows
    assert report["quality"]["verdict"] == "review"
    assert "FALLBACK_MODEL" in [f["code"] for f in report["quality"]["flags"]]
    rt = pydicom.dcmread(out / "gtv_rtstruct.dcm")
    assert "REVIEW" in rt.StructureSetLabel and "FALLBACK_MODEL" in rt.StructureSetDescription


def test_flair_in_another_frame_of_reference_is_left_out(plain, tmp_path, models):
    frame = pydicom.uid.generate_uid()

    def elsewhere(rel, ds):
        if rel.parts[0] == "FLAIRreg":
            ds.FrameOfReferenceUID = frame
        return ds

    proc, out, report = _run(iv.edited(plain, tmp_path / "study", elsewhere), tmp_path, models)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report["configuration"]["channels"] == ["T1c"]
    assert "FrameOfReferenceUID (0020,0052)" in report["configuration"]["passed_over"][0]["why"]


def test_without_t1c_a_clean_error_says_it_is_required(plain, tmp_path, models):
    study = iv.edited(plain, tmp_path / "study", lambda rel, ds: None if rel.parts[0] == "T1post" else ds)
    proc = run_app(study, tmp_path / "out", models)
    assert_clean_failure(proc, tmp_path / "out", code=3,
                         pattern=r"SeriesSelectionError: the study has no usable T1 post-contrast series: T1c is "
                                 r"required by every model .* no series matches channel 'T1c'")


def test_no_gtv_found_is_a_valid_outcome(shared_data, tmp_path):
    """A model that finds nothing on a real study (its minimum component volume above any tumour): exit 0, the
    report says so, the RTSTRUCT's GTV ROI has no contours, the SEG's GTV segment is empty (highdicom writes it;
    dciodvfy accepts it)."""
    models = tmp_path / "models"
    write_known_function_bundle(models / "nothing", min_component_mm3=1e12)
    study = shared_data / "tcia-brain-tumor-progression" / "PGBM-001" / "1992-04-02"
    proc, out, report = _run(study, tmp_path, models)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report["structures"]["GTV"]["volume_cm3"] == 0
    assert report["quality"]["verdict"] == "review"
    assert [f["code"] for f in report["quality"]["flags"]] == ["NO_GTV"]
    rt = pydicom.dcmread(out / "gtv_rtstruct.dcm")
    assert [r.ROIName for r in rt.StructureSetROISequence] == ["GTV"]
    assert "ContourSequence" not in rt.ROIContourSequence[0] or len(rt.ROIContourSequence[0].ContourSequence) == 0
    seg = hd.seg.segread(out / "gtv_seg.dcm")
    assert seg.SegmentSequence[0].SegmentLabel == "GTV"
    if shutil.which("dciodvfy"):
        for name in ("gtv_seg.dcm", "gtv_rtstruct.dcm"):
            check = subprocess.run(["dciodvfy", str(out / name)], capture_output=True, text=True)
            errors = [line for line in (check.stdout + check.stderr).splitlines() if line.startswith("Error")]
            assert errors == [], f"{name}: {errors}"


def test_the_bundled_models_contour_a_study_without_flair_with_t1c_alone(plain, tmp_path):
    """The product's own models folder holds a T1c-alone GTV model: a real study without its FLAIR (and T2) is
    contoured with it, and the report and picture say so; being the less accurate fallback, its contour is always
    flagged for review (on this study it also puts GTV on normal brain, far from the tumour)."""
    study = iv.edited(plain, tmp_path / "study", lambda rel, ds: None if rel.parts[0] in ("FLAIRreg", "T2reg") else ds)
    proc, out, report = _run(study, tmp_path, None)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert report["configuration"]["channels"] == ["T1c"]
    assert report["model"]["name"] == "glioblastoma_gtv_t1c_segresnet"
    assert report["configuration"]["validation"]["n"] == 8 and 0 < report["configuration"]["validation"]["dsc"] < 1
    assert report["structures"]["GTV"]["volume_cm3"] > 5
    assert "Brain" in report["structures"]
    assert report["quality"]["verdict"] == "review"
    assert report["quality"]["flags"][0]["code"] == "FALLBACK_MODEL"
