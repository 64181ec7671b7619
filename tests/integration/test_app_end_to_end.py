"""The full MONAI Deploy graph on the real DICOM studies, checked with readers this project did not write.

Each study runs twice: with the bundled default models (brain extraction + GTV, as `make demo` runs them) and with
a TorchScript model whose output is a known function of the input (bright T1c = "GTV": a mask with hundreds of
islands and holes, the hard case for contours). Accuracy against MaskTumor is in test_clinical.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from model_fixtures import write_known_function_bundle
from rt_readback import rasterize_rtstruct

from operators.core.dicom.folder import scan_folder
from operators.core.dicom.volume import series_to_volume

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STUDIES = ["PGBM-001/1991-11-19", "PGBM-001/1992-04-02", "PGBM-003/1995-03-29"]
OUTPUTS = {"gtv_seg.dcm", "gtv_rtstruct.dcm", "gtv_review.png", "gtv_report.json"}


def run_app(input_dir: Path, output_dir: Path, models: Path | None, *, env: dict | None = None,
            extra: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "app", "-i", str(input_dir), "-o", str(output_dir)]
    if models is not None:
        cmd += ["-m", str(models)]
    return subprocess.run(cmd + (extra or []), cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def series_by_description(study_dir: Path) -> dict:
    return {s.description: s for s in scan_folder(study_dir)[0].series}


@pytest.fixture(scope="module")
def known_model(tmp_path_factory) -> Path:
    return write_known_function_bundle(tmp_path_factory.mktemp("models") / "known")


@pytest.fixture(scope="module", params=[(s, m) for s in STUDIES for m in ("default", "known")],
                ids=lambda p: f"{p[0]}-{p[1]}")
def app_run(request, shared_data, known_model, tmp_path_factory):
    study_name, model = request.param
    # A copy under a neutral name, so that a patient ID in the shared folder's path cannot reach the logs through
    # the command line; what is checked is that nothing is derived from the DICOM content.
    study = tmp_path_factory.mktemp("in") / "study"
    shutil.copytree(shared_data / "tcia-brain-tumor-progression" / study_name, study)
    out = tmp_path_factory.mktemp("out") / "result"
    proc = run_app(study, out, known_model if model == "known" else None)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"study": study, "out": out, "proc": proc, "model": model}


def test_writes_exactly_the_four_outputs(app_run):
    assert {p.name for p in app_run["out"].iterdir()} == OUTPUTS


def test_dciodvfy_reports_no_errors(app_run):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (dicom3tools) not installed")
    for name in ("gtv_seg.dcm", "gtv_rtstruct.dcm"):
        proc = subprocess.run(["dciodvfy", str(app_run["out"] / name)], capture_output=True, text=True)
        errors = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], f"{name}: {errors}"


def test_series_choice_and_report(app_run):
    report = json.loads((app_run["out"] / "gtv_report.json").read_text())
    chosen = {s["channel"]: s["series_description"] for s in report["decisions"]["series"]}
    assert chosen == {"T1c": "T1post", "FLAIR": "FLAIR_reg"}
    all_candidates = [c[0] for s in report["decisions"]["series"] for c in s["candidates"]]
    assert not any("Mask" in c for c in all_candidates)
    assert report["status"] == "UNAPPROVED"
    expected = "known_function_bright_t1c" if app_run["model"] == "known" else "glioblastoma_gtv_segresnet"
    assert report["model"]["name"] == expected and len(report["model"]["sha256"]) == 64
    for stage in ("load", "select", "to_volume", "resample", "inference", "inverse", "postprocess", "seg",
                  "rtstruct", "report"):
        assert report["stages"][stage]["seconds"] >= 0
    assert report["structures"]["GTV"]["volume_cm3"] > 1
    if app_run["model"] == "default":
        assert report["stages"]["brain_extraction"]["seconds"] > 0
        assert 700 < report["decisions"]["brain_volume_cm3"] < 2500
        # the GTV may lie in the brain plus the brain model's margin; intensities are normalised in the brain alone
        assert report["decisions"]["brain_region_cm3"] > report["decisions"]["brain_volume_cm3"] + 100
        assert report["decisions"]["brain_margin_mm"] == 4.0
        assert not any("brain mask volume" in w for w in report["warnings"])


def reference(app_run):
    series = series_by_description(app_run["study"])["T1post"]
    volume, headers = series_to_volume(series)
    return volume, headers


def test_seg_frames_align_with_reference_slices(app_run):
    volume, headers = reference(app_run)
    seg = hd.seg.segread(app_run["out"] / "gtv_seg.dcm")
    assert seg.SegmentSequence[0].SegmentLabel == "GTV"
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    report = json.loads((app_run["out"] / "gtv_report.json").read_text())
    assert algo.AlgorithmName == report["model"]["name"] and algo.AlgorithmVersion == report["model"]["version"]
    uids = [h.SOPInstanceUID for h in headers]
    mask = seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0]
    assert mask.shape == volume.array.shape
    frames = seg.PerFrameFunctionalGroupsSequence
    for f in frames:
        ref_uid = f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = uids.index(ref_uid)
        ipp = np.array(f.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        np.testing.assert_allclose(ipp, np.array(headers[k].ImagePositionPatient, dtype=float), atol=1e-3)
    assert mask.sum() > 100


def test_rtstruct_even_odd_readback_reproduces_the_seg(app_run):
    volume, headers = reference(app_run)
    seg = hd.seg.segread(app_run["out"] / "gtv_seg.dcm")
    seg_mask = seg.get_pixels_by_source_instance([h.SOPInstanceUID for h in headers], segment_numbers=[1])[..., 0] > 0
    rt = pydicom.dcmread(app_run["out"] / "gtv_rtstruct.dcm")
    rt_mask = rasterize_rtstruct(rt, headers, volume.grid, roi_number=1)
    dice = 2 * (rt_mask & seg_mask).sum() / (rt_mask.sum() + seg_mask.sum())
    assert dice >= 0.99, f"RTSTRUCT even-odd read-back vs SEG Dice {dice:.4f}"
    roi = rt.StructureSetROISequence[0]
    assert roi.ROIName == "GTV" and roi.ROIGenerationAlgorithm == "AUTOMATIC"
    assert rt.RTROIObservationsSequence[0].RTROIInterpretedType == "GTV"
    assert rt.ApprovalStatus == "UNAPPROVED"
    assert all("ContourImageSequence" in c for c in rt.ROIContourSequence[0].ContourSequence)


def test_brain_is_delivered_as_an_organ_at_risk(app_run):
    """Default models: segment 2 and ROI 2 are the Brain (TG-263 name, ORGAN), drawn by the brain model; the GTV
    stays first. The known-function model names no brain model: GTV alone."""
    volume, headers = reference(app_run)
    seg = hd.seg.segread(app_run["out"] / "gtv_seg.dcm")
    rt = pydicom.dcmread(app_run["out"] / "gtv_rtstruct.dcm")
    report = json.loads((app_run["out"] / "gtv_report.json").read_text())
    names = [r.ROIName for r in rt.StructureSetROISequence]
    if app_run["model"] != "default":
        assert names == ["GTV"] and len(seg.SegmentSequence) == 1
        return
    assert names == ["GTV", "Brain"] and [s.SegmentLabel for s in seg.SegmentSequence] == ["GTV", "Brain"]
    assert rt.RTROIObservationsSequence[1].RTROIInterpretedType == "ORGAN"
    brain_model = report["structures"]["Brain"]["model"]
    algo = seg.SegmentSequence[1].SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == brain_model["name"] == "brain_extraction"
    assert brain_model["sha256"][:16] in rt.StructureSetROISequence[1].ROIGenerationDescription
    uids = [h.SOPInstanceUID for h in headers]
    seg_brain = seg.get_pixels_by_source_instance(uids, segment_numbers=[2])[..., 0] > 0
    rt_brain = rasterize_rtstruct(rt, headers, volume.grid, roi_number=2)
    assert 2 * (rt_brain & seg_brain).sum() / (rt_brain.sum() + seg_brain.sum()) >= 0.99
    cm3 = seg_brain.sum() * volume.grid.voxel_volume_mm3 / 1000
    assert 1400 <= cm3 <= 1900 and abs(cm3 - report["structures"]["Brain"]["volume_cm3"]) < 1
    gtv = seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0] > 0
    assert not (gtv & ~seg_brain).sum() > 0.05 * gtv.sum()  # the GTV lies (within the margin) in the brain
    assert all("ContourImageSequence" in c for c in rt.ROIContourSequence[1].ContourSequence)


def test_plastimatch_reads_the_rtstruct(app_run, tmp_path):
    if shutil.which("plastimatch") is None:
        pytest.skip("plastimatch not installed")
    volume, headers = reference(app_run)
    seg = hd.seg.segread(app_run["out"] / "gtv_seg.dcm")
    seg_mask = seg.get_pixels_by_source_instance([h.SOPInstanceUID for h in headers], segment_numbers=[1])[..., 0] > 0
    fixed = tmp_path / "t1post.mha"
    from operators.core.geometry import volume_to_sitk

    sitk.WriteImage(volume_to_sitk(volume), str(fixed))
    out = tmp_path / "structures"
    proc = subprocess.run(["plastimatch", "convert", "--input", str(app_run["out"] / "gtv_rtstruct.dcm"),
                           "--fixed", str(fixed), "--output-prefix", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    pm = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "GTV.mha"))) > 0
    if app_run["model"] == "default":  # the Brain ROI, read by plastimatch, is the SEG's Brain segment
        brain_seg = seg.get_pixels_by_source_instance([h.SOPInstanceUID for h in headers],
                                                      segment_numbers=[2])[..., 0] > 0
        brain_pm = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "Brain.mha"))) > 0
        assert (brain_seg & ~brain_pm).sum() == 0
        assert 2 * (brain_pm & brain_seg).sum() / (brain_pm.sum() + brain_seg.sum()) >= 0.97
    assert pm.shape == seg_mask.shape
    missing = (seg_mask & ~pm).sum()
    assert missing == 0, f"plastimatch lost {missing} SEG voxels"
    if app_run["model"] == "default":  # a real GTV: plastimatch's scan conversion adds a rim, nothing more
        dice = 2 * (pm & seg_mask).sum() / (pm.sum() + seg_mask.sum())
        assert dice >= 0.90, f"plastimatch vs SEG Dice {dice:.4f}"
        return
    # plastimatch ORs the contours of a slice, so in-slice holes come back filled: what it reads must equal the SEG
    # with each slice's holes filled (the known-function mask is full of rings).
    from scipy import ndimage

    filled = np.stack([ndimage.binary_fill_holes(s) for s in seg_mask])
    dice = 2 * (pm & filled).sum() / (pm.sum() + filled.sum())
    assert dice >= 0.99, f"plastimatch vs hole-filled SEG Dice {dice:.4f}"


def test_no_patient_identifiers_in_logs_or_report(app_run):
    first = pydicom.dcmread(next(iter(series_by_description(app_run["study"])["T1post"].instances)).path,
                            stop_before_pixels=True)
    secrets = {str(first.get(k, "")) for k in ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber")}
    secrets.discard("")
    text = app_run["proc"].stdout + app_run["proc"].stderr + (app_run["out"] / "gtv_report.json").read_text()
    for s in secrets:
        assert s not in text, "a patient identifier appears in the logs or the JSON report"


def test_graph_equals_the_pipeline_composition(app_run):
    """The operators of the graph and operators.core.pipeline.segment (what evaluate and evaluate-dicom run) give
    the same GTV and brain, voxel for voxel, on a real study."""
    if app_run["model"] != "default":
        pytest.skip("checked with the bundled models")
    from operators.core.model.predictor import load_models
    from operators.core.pipeline import segment
    from operators.core.selection.rules import load_rules
    from training.dicom_eval import load_study

    spec, predictor, brain = load_models(REPO / "models")
    rules = load_rules(REPO / "app" / "series_rules.json")
    _, vols, t1c_headers = load_study(app_run["study"], spec.preprocessing.channels, rules)
    result = segment(vols, spec, predictor, brain_model=brain, headers=t1c_headers)
    _, headers = reference(app_run)
    seg = hd.seg.segread(app_run["out"] / "gtv_seg.dcm")
    uids = [h.SOPInstanceUID for h in headers]
    np.testing.assert_array_equal(seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0] > 0,
                                  result.gtv)
    np.testing.assert_array_equal(seg.get_pixels_by_source_instance(uids, segment_numbers=[2])[..., 0] > 0,
                                  result.brain.tissue.array)
    report = json.loads((app_run["out"] / "gtv_report.json").read_text())
    assert report["quality"] == result.quality.to_dict()
    assert report["quality_signals"] == pytest.approx(result.quality.signals)
