"""Input variants for the robustness tests, built from the real studies in ``../shared/data``.

Every case is a real DICOM file written by a maintained tool (dcmtk, pydicom, highdicom) from the TCIA study
PGBM-001/1992-04-02 (T1post, FLAIRreg, T2reg, MaskTumor; 24 slices each), never a mock. :func:`plain_copy` makes the
reference input, with made-up identifying values stamped in (:data:`IDENTITY`) so that a test can look for them in
the app's output; every other builder derives its input from that copy, into a new folder (the source files are
read-only and are never modified).
"""

from __future__ import annotations

import random
import shutil
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.data import get_testdata_file
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

SERIES = ("T1post", "FLAIRreg", "T2reg", "MaskTumor")
TCIA = Path("tcia-brain-tumor-progression")
STUDY = TCIA / "PGBM-001" / "1992-04-02"
EARLIER_STUDY = TCIA / "PGBM-001" / "1991-11-19"  # same patient
OTHER_PATIENT = TCIA / "PGBM-003" / "1995-03-29"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
#: Made-up identifying values stamped into the plain input: none may appear in the app's logs or report.
IDENTITY = {
    "PatientName": "Quixby^Zelda^Marguerite",
    "PatientID": "MRN80417QZ",
    "PatientBirthDate": "19470823",
    "AccessionNumber": "ACC7731904",
    "ReferringPhysicianName": "Throgmorton^Aldous",
    "OperatorsName": "Vantongeren^Beatrix",
    "PerformingPhysicianName": "Oyelaran^Tunde",
    "InstitutionName": "Saint Wendeline Hospital",
    "OtherPatientIDs": "ALT55190QZ",
}
OTHER_IDENTITY = {
    "PatientName": "Brackenbury^Osric",
    "PatientID": "MRN33107OB",
    "PatientBirthDate": "19520219",
    "AccessionNumber": "ACC4418266",
}
#: Values from the wild that do not conform to their VR (pydicom quotes them in warnings; highdicom refuses them).
NONCONFORMING = {"PatientBirthDate": "1947-08-23", "StudyTime": "09:15:47", "PatientSex": "Female"}


def secrets(identity: Mapping[str, str]) -> set[str]:
    """Every value of ``identity`` and every component of its person names (at least 4 characters)."""
    found = set()
    for value in identity.values():
        found.add(value)
        found.update(part for part in value.replace("=", "^").split("^") if len(part) >= 4)
    return found


def dicom_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _stamp(ds: Dataset, values: Mapping[str, str]) -> Dataset:
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def _rewrite(src: Path, dst: Path, edit: Callable[[Path, Dataset], Dataset | None]) -> Path:
    """Copy every file of ``src`` to the same relative path in ``dst`` through ``edit`` (None drops the file)."""
    for path in dicom_files(src):
        ds = edit(path.relative_to(src), pydicom.dcmread(path))
        if ds is not None:
            _save(ds, dst / path.relative_to(src))
    return dst


def _copy_files(src: Path, dst: Path, *, skip: Iterable[str] = ()) -> Path:
    """Byte copies (writable) of every file of ``src`` whose first folder is not in ``skip``."""
    skipped = set(skip)
    for path in dicom_files(src):
        rel = path.relative_to(src)
        if rel.parts[0] in skipped:
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst / rel)
    return dst


# --------------------------------------------------------------------------------------------- the plain input
def plain_copy(shared: Path, dst: Path, *, study: Path = STUDY, series: Iterable[str] = SERIES,
               identity: Mapping[str, str] = IDENTITY) -> Path:
    """The named series of a real study, each file re-written with ``identity`` stamped in."""
    for name in series:
        for path in sorted((shared / study / name).iterdir()):
            _save(_stamp(pydicom.dcmread(path), identity), dst / name / path.name)
    return dst


# --------------------------------------------------------------------------------------------- transfer syntaxes
#: Transfer syntax variants: name -> dcmtk command (the input and output file are appended) or pydicom syntax.
DCMTK_SYNTAXES = {
    "jpeg_lossless_sv1": ["dcmcjpeg", "+e1"],
    "jpeg_ls_lossless": ["dcmcjpls", "+el"],
    "rle_lossless": ["dcmcrle"],
    "deflated_explicit_le": ["dcmconv", "+td"],
    "explicit_big_endian": ["dcmconv", "+tb"],
}
PYDICOM_SYNTAXES = {"jpeg2000_lossless": pydicom.uid.JPEG2000Lossless}


def transcode(plain: Path, dst: Path, variant: str) -> Path:
    """Every file of ``plain`` in another transfer syntax, written by dcmtk or by pydicom's ``Dataset.compress``."""
    if variant in DCMTK_SYNTAXES:
        for path in dicom_files(plain):
            target = dst / path.relative_to(plain)
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([*DCMTK_SYNTAXES[variant], str(path), str(target)], check=True, capture_output=True)
        return dst

    def compress(_: Path, ds: Dataset) -> Dataset:
        ds.compress(PYDICOM_SYNTAXES[variant])
        return ds

    return _rewrite(plain, dst, compress)


# --------------------------------------------------------------------------------------------- multi-frame
def legacy_converted(plain: Path, dst: Path, *, series: str = "T1post") -> Path:
    """``series`` as one Legacy Converted Enhanced MR instance (highdicom), the other series as they are."""
    _copy_files(plain, dst, skip=[series])
    slices = [pydicom.dcmread(p) for p in dicom_files(plain / series)]
    first = slices[0]
    image = hd.legacy.LegacyConvertedEnhancedMRImage(
        slices, series_instance_uid=first.SeriesInstanceUID, series_number=int(first.SeriesNumber),
        sop_instance_uid=generate_uid(), instance_number=1,
    )
    _save(image, dst / series / "legacy_converted")
    return dst


# Classic per-slice attributes that an Enhanced MR Image keeps in its functional groups (or drops).
_PER_FRAME = {
    "SOPInstanceUID", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing",
    "SliceThickness", "SpacingBetweenSlices", "SliceLocation", "RescaleSlope", "RescaleIntercept", "RescaleType",
    "WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "RepetitionTime", "EchoTime", "InversionTime",
    "FlipAngle", "ScanningSequence", "SequenceVariant", "ContrastBolusAgent", "ImageType", "AcquisitionTime",
    "ContentTime", "AcquisitionNumber", "SmallestImagePixelValue", "LargestImagePixelValue", "PixelData",
    "EchoNumbers", "ImagesInAcquisition", "TriggerTime", "ImageComments",
}


def _item(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def enhanced_mr_image(slices: list[Dataset], *, frame_order: list[int]) -> Dataset:
    """A true Enhanced MR Image (1.2.840.10008.5.1.4.1.1.4.1) from classic MR slices, converted by hand.

    Geometry, pixel measures, rescale, MR timing/echo/modifier and the frame type move into the shared and per-frame
    functional groups, ScanningSequence becomes EchoPulseSequence, ContrastBolusAgent a ContrastBolusAgentSequence
    code. Frame ``f + 1`` holds ``slices[frame_order[f]]``; the series stays the same SeriesInstanceUID.
    """
    first = slices[0]
    ds = Dataset()
    for elem in first:
        if elem.keyword not in _PER_FRAME and not elem.tag.is_private:
            ds.add(elem)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.InstanceNumber = ENHANCED_MR_IMAGE, generate_uid(), 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.ContentQualification, ds.ResonantNucleus = "PRODUCT", "1H"
    ds.NumberOfFrames = len(frame_order)
    scanning = first.get("ScanningSequence", [])
    codes = {str(scanning)} if isinstance(scanning, str) else {str(v) for v in scanning}
    ds.EchoPulseSequence = "BOTH" if {"SE", "GR"} <= codes else ("GRADIENT" if "GR" in codes else "SPIN")
    if first.get("ContrastBolusAgent"):
        ds.ContrastBolusAgentSequence = [_item(CodeValue="C-17800", CodingSchemeDesignator="SRT",
                                               CodeMeaning=str(first.ContrastBolusAgent)[:64])]
    shared = Dataset()
    shared.PixelMeasuresSequence = [_item(PixelSpacing=first.PixelSpacing, SliceThickness=first.SliceThickness)]
    shared.PlaneOrientationSequence = [_item(ImageOrientationPatient=first.ImageOrientationPatient)]
    shared.PixelValueTransformationSequence = [_item(RescaleSlope=first.get("RescaleSlope", 1),
                                                     RescaleIntercept=first.get("RescaleIntercept", 0),
                                                     RescaleType="US")]
    shared.MRImageFrameTypeSequence = [_item(FrameType=["ORIGINAL", "PRIMARY", "M", "NONE"],
                                             PixelPresentation="MONOCHROME", VolumetricProperties="VOLUME",
                                             VolumeBasedCalculationTechnique="NONE", ComplexImageComponent="MAGNITUDE",
                                             AcquisitionContrast="UNKNOWN")]
    timing = _item(RepetitionTime=first.RepetitionTime)
    if "FlipAngle" in first:
        timing.FlipAngle = first.FlipAngle
    shared.MRTimingAndRelatedParametersSequence = [timing]
    shared.MREchoSequence = [_item(EffectiveEchoTime=first.EchoTime)]
    modifier = _item(InversionRecovery="YES" if "IR" in codes else "NO")
    if "IR" in codes and "InversionTime" in first:
        modifier.InversionTimes = [first.InversionTime]
    shared.MRModifierSequence = [modifier]
    ds.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for f, k in enumerate(frame_order):
        item = Dataset()
        item.PlanePositionSequence = [_item(ImagePositionPatient=slices[k].ImagePositionPatient)]
        item.FrameContentSequence = [_item(StackID="1", InStackPositionNumber=f + 1)]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.stack([slices[k].pixel_array for k in frame_order]).tobytes()
    return ds


def enhanced(plain: Path, dst: Path, *, series: Iterable[str] = ("T1post", "FLAIRreg")) -> Path:
    """The named series each as one true Enhanced MR Image, frames stored out of slice order."""
    converted = set(series)
    _copy_files(plain, dst, skip=converted)
    for name in converted:
        slices = [pydicom.dcmread(p) for p in dicom_files(plain / name)]
        order = list(range(0, len(slices), 2)) + list(range(1, len(slices), 2))[::-1]  # interleaved, then reversed
        _save(enhanced_mr_image(slices, frame_order=order), dst / name / "enhanced")
    return dst


# --------------------------------------------------------------------------------------------- layouts
def _restamped(ds: Dataset, like: Dataset) -> Dataset:
    """``ds`` moved into the study of ``like`` (patient, study), as a new instance of a new series."""
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                    "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        setattr(ds, keyword, like.get(keyword, ""))
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def extra_objects(plain: Path, dst: Path, shared: Path) -> list[Path]:
    """Non-image objects of the same study: an SR (pydicom's test file), a grayscale presentation state
    (highdicom, on the T1post images), an RTSTRUCT (rt-utils' test file); plus a text file, an empty file and
    pydicom's RTSTRUCT test file without a DICOM preamble (not DICOM as written)."""
    t1 = [pydicom.dcmread(p, stop_before_pixels=True) for p in dicom_files(plain / "T1post")]
    written = [
        _save(_restamped(pydicom.dcmread(get_testdata_file("test-SR.dcm")), t1[0]), dst / "sr" / "report"),
        _save(_restamped(pydicom.dcmread(shared / "dicom-fixtures" / "rt-utils" / "rt.dcm"), t1[0]),
              dst / "rt" / "old_contours"),
    ]
    pr = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=t1, series_instance_uid=generate_uid(), series_number=900, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer="test", manufacturer_model_name="test", software_versions="1",
        device_serial_number="1", content_label="WINDOW",
    )
    written.append(_save(pr, dst / "pr" / "view_state"))
    (dst / "notes.txt").write_text("exported by PACS\n")
    (dst / "empty").write_bytes(b"")
    shutil.copyfile(get_testdata_file("rtstruct.dcm"), dst / "rt" / "no_preamble")
    return written


def messy_layout(plain: Path, dst: Path, shared: Path) -> Path:
    """Nested folders of any depth, names without ``.dcm`` and out of slice order, series mixed in folders,
    duplicated instances under other names, and extra non-image objects of the same study."""
    rng = random.Random(6)
    files = dicom_files(plain)
    rng.shuffle(files)
    folders = ["a", "a/b/c", "x y", "deep/er/still/deeper", "."]
    for n, path in enumerate(files):
        target = dst / folders[n % len(folders)] / f"{rng.getrandbits(40):010x}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if n % 17 == 0:  # a byte-identical copy of this instance elsewhere
            (dst / "copies").mkdir(exist_ok=True)
            shutil.copyfile(path, dst / "copies" / f"dup{n}.dcm")
    extra_objects(plain, dst, shared)
    return dst


def dicomdir_layout(plain: Path, dst: Path) -> Path:
    """The files under ISO 9660 names (``DICOM/S01/I0001``) with a DICOMDIR made by dcmtk's ``dcmmkdir``."""
    for s, name in enumerate(SERIES):
        for i, path in enumerate(dicom_files(plain / name)):
            target = dst / "DICOM" / f"S{s:02d}" / f"I{i:04d}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    subprocess.run(["dcmmkdir", "+r", "+I", "+id", str(dst), "+D", str(dst / "DICOMDIR"), "DICOM"], check=True,
                   capture_output=True, cwd=dst)
    return dst


def with_other_study(plain: Path, dst: Path, shared: Path, *, study: Path, series: Iterable[str],
                     identity: Mapping[str, str]) -> Path:
    """``plain`` plus series of another real study, stamped with ``identity``."""
    _copy_files(plain, dst)
    plain_copy(shared, dst / "other", study=study, series=series, identity=identity)
    return dst


# --------------------------------------------------------------------------------------------- broken inputs
def edited(plain: Path, dst: Path, edit: Callable[[Path, Dataset], Dataset | None]) -> Path:
    """``plain`` with every file passed through ``edit(relative path, dataset)`` (None leaves the file out)."""
    return _rewrite(plain, dst, edit)


def slices_in_order(folder: Path, series: str) -> list[Path]:
    """The files of ``folder/series`` sorted by position along the slice normal (file names are not in order)."""
    headers = {p: pydicom.dcmread(p, stop_before_pixels=True) for p in dicom_files(folder / series)}
    iop = np.asarray(next(iter(headers.values())).ImageOrientationPatient, dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    return sorted(headers, key=lambda p: float(np.asarray(headers[p].ImagePositionPatient, dtype=float) @ normal))


def slice_name(folder: Path, series: str, index: int) -> Path:
    """Relative path of the file holding slice ``index`` (in position order) of ``series``."""
    return slices_in_order(folder, series)[index].relative_to(folder)


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def truncate_in_series_uid(path: Path) -> None:
    """Cut the file inside the value of SeriesInstanceUID (0020,000E): pydicom reads the rest of the header without
    complaint and the UID cut short, so only the missing pixel data gives the truncation away."""
    raw = path.read_bytes()
    truncate(path, raw.index(b"\x20\x00\x0e\x00UI") + 8 + 10)


def corrupt_codestream(path: Path) -> None:
    """Invert 40 bytes at the start of the first compressed fragment (the codestream header)."""
    raw = bytearray(path.read_bytes())
    start = raw.index(b"\xe0\x7f\x10\x00") + 12 + 8 + 8 + 40  # PixelData, empty offset table, first item
    raw[start:start + 40] = bytes(b ^ 0xFF for b in raw[start:start + 40])
    path.write_bytes(bytes(raw))


def rotated_orientation(iop: Iterable[float], degrees: float) -> list[float]:
    """ImageOrientationPatient turned by ``degrees`` about its slice normal."""
    v = np.asarray([float(x) for x in iop])
    r, c = v[:3], v[3:]
    a = np.radians(degrees)
    r2, c2 = np.cos(a) * r + np.sin(a) * c, -np.sin(a) * r + np.cos(a) * c
    return [round(float(x), 8) for x in np.concatenate([r2, c2])]


def middle_slices(plain: Path, dst: Path, count: int) -> Path:
    """Only the ``count`` middle slices of every series."""
    kept = set()
    for series in SERIES:
        files = slices_in_order(plain, series)
        start = (len(files) - count) // 2
        kept.update(p.relative_to(plain) for p in files[start:start + count])
    return _rewrite(plain, dst, lambda rel, ds: ds if rel in kept else None)


# --------------------------------------------------------------------------------------------- poor inputs
# Studies the app can process but should not trust (the quality verdict's cases): built by training.poor_inputs,
# which `python -m training evaluate-poor-inputs` also uses for docs/quality.md.
from training.poor_inputs import shifted_series, t1pre_as_t1c, upper_slices  # noqa: E402,F401
