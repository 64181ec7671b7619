"""Unusual and bad input, through the whole app: the right contour, or one clean error and no output.

Every input is derived from the real study PGBM-001/1992-04-02 by ``input_variants`` (dcmtk, pydicom and highdicom
write the files). The model is the known-function TorchScript (bright T1c = "GTV"), so an input that must work is
checked *exactly* against the plain input's run: the SEG frames (read with highdicom, by source image) and the
RTSTRUCT ContourData must be identical, slice by slice, wherever the slices are stored. Each input is built once and
run once per module; every run's stdout, stderr and JSON report are kept for the safety checks at the end (no
identifying value in any of them, input folders unchanged).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import highdicom as hd
import input_variants as iv
import numpy as np
import pydicom
import pytest
from model_fixtures import write_known_function_bundle
from test_app_end_to_end import OUTPUTS, run_app
from test_app_failures import assert_clean_failure

from operators.core.model.spec import METADATA_PATH, MODEL_PATH

pytestmark = pytest.mark.integration

MR_CLASSES = {"1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.4.4"}
VICTIM = 12  # the slice (file index in slice order) that failure cases damage: mid-volume, inside the tumour


# ------------------------------------------------------------------------------------------------ the lab
@dataclass
class Run:
    name: str
    input: Path
    out: Path
    proc: subprocess.CompletedProcess
    before: dict = field(repr=False)
    after: dict = field(repr=False)

    @property
    def text(self) -> str:
        """Everything the run printed or reported."""
        report = self.out / "gtv_report.json"
        return self.proc.stdout + self.proc.stderr + (report.read_text() if report.is_file() else "")


def snapshot(folder: Path) -> dict:
    """Relative path -> (size, mtime_ns, mode) of everything under ``folder``, the folder itself included."""
    found = {".": (0, folder.stat().st_mtime_ns, folder.stat().st_mode)}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        found[str(p.relative_to(folder))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns, st.st_mode)
    return found


def make_read_only(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


class Lab:
    """Builds each input once (then makes it read-only) and runs the app once per input and model."""

    def __init__(self, root: Path, shared: Path, model: Path) -> None:
        self.root, self.shared, self.model = root, shared, model
        self.inputs: dict[str, Path] = {}
        self.results: dict[tuple[str, str], Run] = {}
        self.runs: list[Run] = []

    def input(self, name: str) -> Path:
        if name not in self.inputs:
            folder = BUILDERS[name](self, self.root / "inputs" / name)
            make_read_only(folder)
            self.inputs[name] = folder
        return self.inputs[name]

    def run(self, name: str, *, models: Path | None = None) -> Run:
        key = (name, str(models or self.model))
        if key not in self.results:
            folder = self.input(name)
            before = snapshot(folder)
            out = self.root / "outputs" / f"{name}-{len(self.runs)}"
            proc = run_app(folder, out, models or self.model)
            run = Run(name=name, input=folder, out=out, proc=proc, before=before, after=snapshot(folder))
            self.results[key] = run
            self.runs.append(run)
        return self.results[key]


def _plain(lab: Lab, dst: Path) -> Path:
    return iv.plain_copy(lab.shared, dst)


def _edit_slice(series: str, edit: Callable[[pydicom.Dataset], None]) -> Callable[[Lab, Path], Path]:
    def build(lab: Lab, dst: Path) -> Path:
        plain = lab.input("plain")
        victim = iv.slice_name(plain, series, VICTIM)

        def change(rel: Path, ds: pydicom.Dataset) -> pydicom.Dataset:
            if rel == victim:
                edit(ds)
            return ds

        return iv.edited(plain, dst, change)

    return build


def _damaged_file(base: str, damage: Callable[[Path], None]) -> Callable[[Lab, Path], Path]:
    def build(lab: Lab, dst: Path) -> Path:
        source = lab.input(base)
        for path in iv.dicom_files(source):
            (dst / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst / path.relative_to(source))
        damage(dst / iv.slice_name(source, "T1post", VICTIM))
        return dst

    return build


def _without_victim(lab: Lab, dst: Path) -> Path:
    plain = lab.input("plain")
    victim = iv.slice_name(plain, "T1post", VICTIM)
    return iv.edited(plain, dst, lambda rel, ds: None if rel == victim else ds)


def _flair_elsewhere(lab: Lab, dst: Path) -> Path:
    new_frame = pydicom.uid.generate_uid()

    def change(rel: Path, ds: pydicom.Dataset) -> pydicom.Dataset:
        if rel.parts[0] == "FLAIRreg":
            ds.FrameOfReferenceUID = new_frame
        return ds

    return iv.edited(lab.input("plain"), dst, change)


def _nonconforming(lab: Lab, dst: Path) -> Path:
    def change(rel: Path, ds: pydicom.Dataset) -> pydicom.Dataset:
        with pydicom.config.disable_value_validation():  # written as a non-conforming system would
            for keyword, value in iv.NONCONFORMING.items():
                setattr(ds, keyword, value)
        return ds

    return iv.edited(lab.input("plain"), dst, change)


def _no_mr(lab: Lab, dst: Path) -> Path:
    plain = lab.input("plain")
    iv.edited(plain, dst, lambda rel, ds: ds if rel.parts[0] == "MaskTumor" else None)
    iv.extra_objects(plain, dst, lab.shared)
    return dst


BUILDERS: dict[str, Callable[[Lab, Path], Path]] = {
    "plain": _plain,
    **{name: (lambda n: lambda lab, dst: iv.transcode(lab.input("plain"), dst, n))(name)
       for name in [*iv.DCMTK_SYNTAXES, *iv.PYDICOM_SYNTAXES]},
    "legacy_converted_t1post": lambda lab, dst: iv.legacy_converted(lab.input("plain"), dst),
    "enhanced_t1post_flair": lambda lab, dst: iv.enhanced(lab.input("plain"), dst),
    "messy_layout": lambda lab, dst: iv.messy_layout(lab.input("plain"), dst, lab.shared),
    "dicomdir": lambda lab, dst: iv.dicomdir_layout(lab.input("plain"), dst),
    "other_study_without_flair": lambda lab, dst: iv.with_other_study(
        lab.input("plain"), dst, lab.shared, study=iv.EARLIER_STUDY, series=("T2reg", "MaskTumor"),
        identity=iv.IDENTITY),
    "nonconforming_identity": _nonconforming,
    # must fail
    "two_usable_studies": lambda lab, dst: iv.with_other_study(
        lab.input("plain"), dst, lab.shared, study=iv.EARLIER_STUDY, series=iv.SERIES, identity=iv.IDENTITY),
    "two_patients": lambda lab, dst: iv.with_other_study(
        lab.input("plain"), dst, lab.shared, study=iv.OTHER_PATIENT, series=iv.SERIES, identity=iv.OTHER_IDENTITY),
    "no_mr": _no_mr,
    "truncated_pixel_data": _damaged_file("plain", lambda p: iv.truncate(p, p.stat().st_size - 60000)),
    "truncated_header": _damaged_file("plain", iv.truncate_in_series_uid),
    "corrupt_jpeg_ls": _damaged_file("jpeg_ls_lossless", iv.corrupt_codestream),
    "missing_slice": _without_victim,
    "tilted_slice": _edit_slice("T1post", lambda ds: setattr(
        ds, "ImageOrientationPatient", iv.rotated_orientation(ds.ImageOrientationPatient, 1.0))),
    "other_pixel_spacing": _edit_slice("T1post", lambda ds: setattr(ds, "PixelSpacing", [0.7, 0.7])),
    "flair_other_frame_of_reference": _flair_elsewhere,
    "too_few_slices": lambda lab, dst: iv.middle_slices(lab.input("plain"), dst, 8),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Lab:
    root = tmp_path_factory.mktemp("robustness")
    return Lab(root, shared_data, write_known_function_bundle(root / "models" / "known"))


# ------------------------------------------------------------------------------------------------ what a run wrote
def image_positions(folder: Path) -> dict[tuple[str, int | None], np.ndarray]:
    """(SOPInstanceUID, frame number or None) -> ImagePositionPatient of every MR image in an input folder."""
    found = {}
    for path in iv.dicom_files(folder):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        if str(ds.get("SOPClassUID", "")) not in MR_CLASSES:
            continue
        if "PerFrameFunctionalGroupsSequence" in ds:
            for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence, start=1):
                found[(ds.SOPInstanceUID, f)] = np.array(item.PlanePositionSequence[0].ImagePositionPatient, float)
        else:
            found[(ds.SOPInstanceUID, None)] = np.array(ds.ImagePositionPatient, float)
    return found


def _key(position: np.ndarray) -> tuple[float, ...]:
    return tuple(np.round(position, 3).tolist())


@dataclass
class Contour:
    """A run's result, by slice position: SEG frames and RTSTRUCT contours."""

    seg: dict[tuple[float, ...], np.ndarray]
    rtstruct: list[tuple[tuple[float, ...], tuple[str, ...]]]


def contour_of(run: Run) -> Contour:
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    positions = image_positions(run.input)
    seg = hd.seg.segread(run.out / "gtv_seg.dcm")
    by_position: dict[tuple[float, ...], np.ndarray] = {}
    for item in seg.PerFrameFunctionalGroupsSequence:
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        frame = int(source.ReferencedFrameNumber) if "ReferencedFrameNumber" in source else None
        ref = (source.ReferencedSOPInstanceUID, frame)
        assert ref in positions, f"SEG frame references {ref}, not an image of the input"
        np.testing.assert_allclose(np.array(item.PlanePositionSequence[0].ImagePositionPatient, float),
                                   positions[ref], atol=1e-3)
        if frame is None:
            pixels = seg.get_pixels_by_source_instance([ref[0]], segment_numbers=[1])[0, ..., 0]
        else:
            pixels = seg.get_pixels_by_source_frame(ref[0], source_frame_numbers=[frame], segment_numbers=[1])
            pixels = pixels[0, ..., 0]
        by_position[_key(positions[ref])] = pixels > 0
    rt = pydicom.dcmread(run.out / "gtv_rtstruct.dcm")
    contours = []
    for item in rt.ROIContourSequence[0].get("ContourSequence", []):
        (image,) = item.ContourImageSequence
        frame = int(image.ReferencedFrameNumber) if "ReferencedFrameNumber" in image else None
        ref = (image.ReferencedSOPInstanceUID, frame)
        assert ref in positions, f"RTSTRUCT contour references {ref}, not an image of the input"
        contours.append((_key(positions[ref]), tuple(str(v) for v in item.ContourData)))
    return Contour(seg=by_position, rtstruct=contours)


@pytest.fixture(scope="module")
def plain(lab: Lab) -> Contour:
    run = lab.run("plain")
    assert {p.name for p in run.out.iterdir()} == OUTPUTS
    result = contour_of(run)
    assert len(result.seg) == 24 and sum(int(m.sum()) for m in result.seg.values()) > 1000
    assert len(result.rtstruct) > 100
    return result


def assert_same_contour(run: Run, plain: Contour) -> None:
    assert {p.name for p in run.out.iterdir()} == OUTPUTS
    got = contour_of(run)
    assert got.seg.keys() == plain.seg.keys()
    for position, mask in plain.seg.items():
        assert np.array_equal(got.seg[position], mask), f"SEG frame at {position} differs from the plain input's"
    assert len(got.rtstruct) == len(plain.rtstruct)
    assert got.rtstruct == plain.rtstruct, "RTSTRUCT contours differ from the plain input's"
    report = json.loads((run.out / "gtv_report.json").read_text())
    chosen = {s["channel"]: s["series_description"] for s in report["decisions"]["series"]}
    assert chosen["T1c"].startswith("T1post") and chosen["FLAIR"] == "FLAIR_reg", chosen


def dciodvfy_errors(path: Path) -> list[str]:
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


# ------------------------------------------------------------------------------------------------ must work
TRANSFER_SYNTAXES = {
    "jpeg_lossless_sv1": "1.2.840.10008.1.2.4.70",
    "jpeg_ls_lossless": "1.2.840.10008.1.2.4.80",
    "jpeg2000_lossless": "1.2.840.10008.1.2.4.90",
    "rle_lossless": "1.2.840.10008.1.2.5",
    "deflated_explicit_le": "1.2.840.10008.1.2.1.99",
    "explicit_big_endian": "1.2.840.10008.1.2.2",
}


@pytest.mark.parametrize("variant", list(TRANSFER_SYNTAXES))
def test_transfer_syntax_gives_the_plain_contour(lab: Lab, plain: Contour, variant: str) -> None:
    folder = lab.input(variant)
    syntaxes = {str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                for p in iv.dicom_files(folder)}
    assert syntaxes == {TRANSFER_SYNTAXES[variant]}
    assert_same_contour(lab.run(variant), plain)


@pytest.mark.parametrize("variant", ["legacy_converted_t1post", "enhanced_t1post_flair"])
def test_multiframe_reference_gives_the_plain_contour_with_frame_references(lab: Lab, plain: Contour,
                                                                             variant: str) -> None:
    run = lab.run(variant)
    assert_same_contour(run, plain)
    seg = pydicom.dcmread(run.out / "gtv_seg.dcm")
    (instance,) = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence  # the one multi-frame instance
    frames = {int(f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedFrameNumber)
              for f in seg.PerFrameFunctionalGroupsSequence}
    assert frames == set(range(1, 25))
    rt = pydicom.dcmread(run.out / "gtv_rtstruct.dcm")
    series = rt.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    (listed,) = series.ContourImageSequence
    assert listed.ReferencedSOPInstanceUID == instance.ReferencedSOPInstanceUID
    assert all("ReferencedFrameNumber" in c.ContourImageSequence[0] for c in rt.ROIContourSequence[0].ContourSequence)
    if shutil.which("dciodvfy"):
        assert dciodvfy_errors(run.out / "gtv_seg.dcm") == []
        assert dciodvfy_errors(run.out / "gtv_rtstruct.dcm") == []


@pytest.mark.parametrize("variant", ["messy_layout", "dicomdir"])
def test_folder_layout_gives_the_plain_contour(lab: Lab, plain: Contour, variant: str) -> None:
    run = lab.run(variant)
    assert_same_contour(run, plain)
    if variant == "messy_layout":
        assert "ignored 6 duplicate instance(s)" in run.proc.stderr
        assert "skipped 3 file(s) that are not DICOM" in run.proc.stderr
    else:
        assert "ignored 1 DICOMDIR file(s)" in run.proc.stderr


def test_second_study_of_the_patient_that_cannot_serve_is_left_aside(lab: Lab, plain: Contour) -> None:
    run = lab.run("other_study_without_flair")
    assert_same_contour(run, plain)
    assert "input holds 2 studies; using the only usable one" in run.proc.stderr


def test_nonconforming_patient_values_do_not_stop_the_writers(lab: Lab, plain: Contour) -> None:
    run = lab.run("nonconforming_identity")
    assert_same_contour(run, plain)
    for name in ("gtv_seg.dcm", "gtv_rtstruct.dcm"):
        ds = pydicom.dcmread(run.out / name)
        assert ds.PatientBirthDate == "" and ds.StudyTime == "" and ds.PatientSex == ""
        assert ds.PatientID == iv.IDENTITY["PatientID"] and str(ds.PatientName) == iv.IDENTITY["PatientName"]
    assert "PatientBirthDate (0010,0030) (DA)" in run.proc.stderr


# ------------------------------------------------------------------------------------------------ must fail
FAILURES = {
    # name: (exit code, pattern the one error message must match)
    "two_usable_studies": (2, r"InputDataError: the input holds 2 studies and 2 studies are usable .*give one study "
                              r"only:\n  - study [\d.]+: 4 series, modalities MR\n  - study [\d.]+: 4 series"),
    "two_patients": (2, r"InputDataError: the input holds 2 studies of 2 different patients \(by PatientID\)"),
    "no_mr": (3, r"SeriesSelectionError: the study has no usable T1 post-contrast series: T1c is required by every "
                 r"model \(without a post-contrast T1 there is no GTV\)\. no series matches channel 'T1c' "
                 r".*'Mask_Tumor' MR, Secondary Capture Image "
                 r"Storage.*: SOP class Secondary Capture Image Storage \(SOPClassUID \(0008,0016\) "
                 r"1\.2\.840\.10008\.5\.1\.4\.1\.1\.7\)"),
    "truncated_pixel_data": (2, r"InputDataError: series #\d+ 'T1post' \([\d.]+\): cannot decode PixelData "
                                r"\(7FE0,0010\) of \S+/T1post/{victim} \(TransferSyntaxUID 1\.2\.840\.10008\.1\.2\.1 "
                                r"\(Explicit VR Little Endian\)\): ValueError: The number of bytes of pixel data is "
                                r"less than expected \(106400 vs 166400 bytes\)"),
    "truncated_header": (2, r"InputDataError: input folder \S+ holds 1 damaged DICOM file\(s\) that may be MR slices "
                            r".*T1post/{victim}: the header ends without PixelData \(7FE0,0010\) \(truncated file\); "
                            r"SOP class MR Image Storage"),
    "corrupt_jpeg_ls": (2, r"InputDataError: series #\d+ 'T1post' \([\d.]+\): cannot decode PixelData \(7FE0,0010\) "
                           r"of \S+/T1post/{victim} \(TransferSyntaxUID 1\.2\.840\.10008\.1\.2\.4\.80 \(JPEG-LS "
                           r"Lossless Image Compression\)\): RuntimeError: "),
    "missing_slice": (4, r"GeometryError: series #\d+ 'T1post' \([\d.]+\): ImagePositionPatient \(0020,0032\) steps "
                         r"13\.0+ mm between {before} and {after}; expected about 6\.50+ mm .*a slice is "
                         r"missing"),
    "tilted_slice": (4, r"GeometryError: series #\d+ 'T1post' \([\d.]+\): ImageOrientationPatient \(0020,0037\) "
                        r"differs between instances; found \[.*\] in {victim}, expected \[.*\]"),
    "other_pixel_spacing": (4, r"GeometryError: series #\d+ 'T1post' \([\d.]+\): PixelSpacing \(0028,0030\) differs "
                               r"between instances; found \[0\.7, 0\.7\] in {victim}, expected \[0\.6875, 0\.6875\]"),
    "flair_other_frame_of_reference": (3, r"SeriesSelectionError: no series for channel 'FLAIR' .* lies in the frame "
                                          r"of reference of the T1c reference, series .*'FLAIR_reg' \([\d.]+\) has "
                                          r"FrameOfReferenceUID \(0020,0052\) [\d.]+, expected [\d.]+; "),
    "too_few_slices": (4, r"GeometryError: T1c series is too small for the model: it covers 5\d\.\d mm along its "
                          r"slice normal .*\(8 x 6\.\d+ mm\); the model needs at least 64\.0 mm on every axis"),
}


@pytest.mark.parametrize("variant", list(FAILURES))
def test_bad_input_fails_cleanly(lab: Lab, variant: str) -> None:
    code, pattern = FAILURES[variant]
    t1 = [re.escape(p.name) for p in iv.slices_in_order(lab.input("plain"), "T1post")]
    pattern = pattern.format(victim=t1[VICTIM], before=t1[VICTIM - 1], after=t1[VICTIM + 1])
    run = lab.run(variant)
    assert_clean_failure(run.proc, run.out, code=code, pattern=pattern)


def _model_variant(lab: Lab, name: str) -> Path:
    bundle = lab.root / "models" / name
    if name == "missing":
        return bundle
    if not bundle.exists():
        shutil.copytree(lab.model, bundle)
        if name == "without_torchscript":
            (bundle / MODEL_PATH).unlink()
        else:
            meta = json.loads((bundle / METADATA_PATH).read_text())
            del meta["preprocessing"]["patch_size"]
            (bundle / METADATA_PATH).write_text(json.dumps(meta))
    return bundle


MODEL_FAILURES = {
    "missing": r"ModelSpecError: model folder \S+/missing does not exist or is not a folder",
    "without_torchscript": r"ModelSpecError: model folder \S+/without_torchscript: models/model\.ts is missing",
    "incomplete_metadata": r"ModelSpecError: model metadata \S+/incomplete_metadata/configs/metadata\.json: "
                           r"preprocessing: required field 'patch_size' is missing",
}


@pytest.mark.parametrize("variant", list(MODEL_FAILURES))
def test_bad_model_folder_fails_cleanly(lab: Lab, variant: str) -> None:
    run = lab.run("plain", models=_model_variant(lab, variant))
    assert_clean_failure(run.proc, run.out, code=5, pattern=MODEL_FAILURES[variant])


# ------------------------------------------------------------------------------------------------ safety
def test_no_identifying_value_in_any_output(lab: Lab, plain: Contour) -> None:
    """Every run of this module (successes and failures): stdout, stderr and JSON report."""
    for name in ("enhanced_t1post_flair", "nonconforming_identity", "two_patients", "truncated_header"):
        lab.run(name)  # at least these, when this test runs alone
    values = iv.secrets(iv.IDENTITY) | iv.secrets(iv.OTHER_IDENTITY) | iv.secrets(iv.NONCONFORMING) | {"PGBM-0"}
    assert len(lab.runs) >= 5
    for run in lab.runs:
        text = run.text
        leaked = sorted(v for v in values if v in text)
        assert not leaked, f"run {run.name}: identifying value(s) in the output ({len(leaked)} found)"


def test_the_app_never_writes_into_its_input(lab: Lab, plain: Contour) -> None:
    """Inputs are read-only (as a container's input mount is) and unchanged, file by file, after every run."""
    assert len(lab.runs) >= 5
    for run in lab.runs:
        assert run.after == run.before, f"run {run.name} changed its input folder"
        assert not any(p.stat().st_mode & stat.S_IWUSR for p in [run.input, *run.input.rglob("*")])
    assert os.access(lab.root, os.W_OK)
