"""BraTS cases written as DICOM studies, so that accuracy on them is measured through the app's whole path.

Pre-operative BraTS cases are skull-stripped, co-registered 1 mm volumes: the form many research pipelines hand to
a contouring service. :func:`write_study` writes a case's T1c and FLAIR as two MR Image Storage series of one study
(one frame of reference; T1c with ContrastBolusAgent, FLAIR with inversion-recovery timing), on a grid chosen by
the variant:

* ``"1mm"``: the case's own axial grid;
* ``"thick"``: 5 mm slices every 6 mm (a 5 mm slab average, sampled with 1 mm gaps), 1 mm in-plane;
* ``"oblique"``: the 1 mm grid rotated 15 degrees about left-right and 10 degrees about anterior-posterior,
  numbered from the top down (instance 1 is the highest slice), as some scanners write them.

The tumour core of the case, resampled (nearest neighbour) onto the written T1c grid, is returned as the reference.
Identifiers are synthetic (the case ID only); nothing of a person is written.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from operators.core.geometry import Grid, Volume, resample
from operators.core.product import UID_PREFIX
from training.brats import BratsCase, read_tumour_core, read_volume

VARIANTS = ("1mm", "thick", "oblique")
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def _rotation(lr_deg: float, ap_deg: float) -> np.ndarray:
    a, b = np.deg2rad(lr_deg), np.deg2rad(ap_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    return ry @ rx


def variant_grid(source: Grid, variant: str) -> Grid:
    """The grid a variant writes, covering ``source``'s extent."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, found {variant!r}")
    if variant == "1mm":
        return source
    shape_zyx = np.array(source.shape)
    spacing = np.array(source.spacing, dtype=float)
    centre = source.index_to_lps(((shape_zyx[::-1] - 1) / 2.0)[None])[0]
    direction = np.array(source.direction, dtype=float)
    if variant == "thick":
        spacing = np.array([spacing[0], spacing[1], 6.0])
        n = int(np.floor(shape_zyx[0] * source.spacing[2] / 6.0))
        shape = (n, int(shape_zyx[1]), int(shape_zyx[2]))
    else:
        direction = _rotation(15.0, 10.0) @ direction
        shape = tuple(int(s) for s in shape_zyx)
    size_xyz = np.array(shape[::-1], dtype=float)
    origin = centre - direction @ ((size_xyz - 1) / 2.0 * spacing)
    return Grid.from_parts(shape, origin=origin, spacing=spacing, direction=direction)


def _on_grid(volume: Volume, grid: Grid, variant: str, *, interpolation: str) -> Volume:
    if variant == "thick" and interpolation != "nearest":  # a 5 mm slab behind every sample, as a thick slice is
        slab = ndimage.uniform_filter1d(volume.array.astype(np.float32), size=5, axis=0, mode="nearest")
        volume = volume.with_array(slab)
    return resample(volume, grid, interpolation=interpolation)


def _slice(ds_common: Dataset, grid: Grid, array: np.ndarray, k: int, *, series_uid: str, number: int,
           description: str, timing: dict, thickness: float) -> Dataset:
    ds = Dataset()
    ds.update(ds_common)
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = generate_uid(prefix=UID_PREFIX)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.InstanceNumber = k + 1
    ds.Modality = "MR"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    for key, value in timing.items():
        setattr(ds, key, value)
    d = np.array(grid.direction, dtype=float)
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*d[:, 0], *d[:, 1])]
    ds.ImagePositionPatient = [f"{v:.4f}" for v in grid.index_to_lps(np.array([[0.0, 0.0, k]]))[0]]
    ds.PixelSpacing = [f"{grid.spacing[1]:.4f}", f"{grid.spacing[0]:.4f}"]
    ds.SliceThickness = f"{thickness:.2f}"
    ds.Rows, ds.Columns = int(array.shape[1]), int(array.shape[2])
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.ascontiguousarray(array[k]).astype("<u2").tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def write_study(case: BratsCase, out: Path, variant: str) -> tuple[Volume, Volume]:
    """Write ``case`` (channels T1c, FLAIR) as a DICOM study under ``out``; return ``(T1c, tumour core)`` on the
    written T1c grid (slice order as written)."""
    out = Path(out)
    t1c, flair = (read_volume(p) for p in case.channel_paths[:2])
    grid = variant_grid(t1c.grid, variant)
    thickness = 5.0 if variant == "thick" else float(grid.spacing[2])
    now = dt.datetime.now()
    common = Dataset()
    common.PatientName, common.PatientID = f"BRATS^{case.case_id}", case.case_id
    common.PatientBirthDate, common.PatientSex = "", "O"
    common.StudyInstanceUID = generate_uid(prefix=UID_PREFIX)
    common.FrameOfReferenceUID = generate_uid(prefix=UID_PREFIX)
    common.StudyDate, common.StudyTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    common.StudyID, common.AccessionNumber, common.ReferringPhysicianName = "1", "", ""
    common.PositionReferenceIndicator = ""
    common.Manufacturer = "BraTS (written by training.brats_dicom)"
    series = {
        "T1c": (t1c, 1, "T1 post-contrast", {"ScanningSequence": "GR", "SequenceVariant": "SP",
                                             "RepetitionTime": "1900", "EchoTime": "2.5",
                                             "ContrastBolusAgent": "gadolinium"}),
        "FLAIR": (flair, 2, "FLAIR", {"ScanningSequence": ["SE", "IR"], "SequenceVariant": ["SK", "SP"],
                                      "RepetitionTime": "9000", "EchoTime": "120", "InversionTime": "2500"}),
    }
    written = None
    for name, (vol, number, description, timing) in series.items():
        on = _on_grid(vol, grid, variant, interpolation="linear")
        a = on.array.astype(np.float64)
        scale = 4000.0 / max(float(np.percentile(a[a > 0], 99.9)) if (a > 0).any() else 1.0, 1e-6)
        pixels = np.clip(np.round(a * scale), 0, 65535).astype(np.uint16)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        uid = generate_uid(prefix=UID_PREFIX)
        for k in range(pixels.shape[0]):
            ds = _slice(common, grid, pixels, k, series_uid=uid, number=number, description=description,
                        timing=timing, thickness=thickness)
            if variant == "oblique":  # feet first: instance 1 is the highest slice
                ds.InstanceNumber = pixels.shape[0] - k
            pydicom.dcmwrite(folder / f"{ds.InstanceNumber:04d}.dcm", ds, enforce_file_format=True)
        if name == "T1c":
            written = on.with_array(pixels)
    reference = resample(read_tumour_core(case, (1, 3, 4)), grid, interpolation="nearest")
    return written, reference
