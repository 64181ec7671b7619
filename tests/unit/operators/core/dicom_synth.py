"""Small synthetic MR DICOM series for the input-side tests (written with pydicom, hand-known geometry)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from operators.core.dicom.series import Instance, Series

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def rotation(z_deg: float, x_deg: float) -> np.ndarray:
    """``(3, 3)`` rotation about LPS z then x; its columns serve as row dir, column dir, normal."""
    a, b = np.radians(z_deg), np.radians(x_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


def pattern(shape: tuple[int, int, int]) -> np.ndarray:
    """``(Z, Y, X)`` uint16 with value ``1000 + 100 k + 10 j + i``: each voxel names its own index."""
    k, j, i = np.indices(shape)
    return (1000 + 100 * k + 10 * j + i).astype(np.uint16)


def mr_header(
    *,
    ipp: Sequence[float],
    iop: Sequence[float],
    pixel_spacing: Sequence[float] = (0.5, 0.8),
    rows: int = 4,
    cols: int = 5,
    study_uid: str = "1.2.826.0.1.3680043.8.498.1",
    series_uid: str = "1.2.826.0.1.3680043.8.498.2",
    for_uid: str = "1.2.826.0.1.3680043.8.498.3",
    sop_class: str = MR_IMAGE,
    instance_number: int = 1,
    **extra: object,
) -> Dataset:
    """A classic MR image header (no pixels); ``extra`` sets or overrides attributes by keyword."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = for_uid
    ds.PatientID = "SYNTH-PATIENT-7"
    ds.PatientName = "Synthetic^Patient"
    ds.Modality = "MR"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.SeriesNumber = 3
    ds.SeriesDescription = "T1 post"
    ds.InstanceNumber = instance_number
    ds.ImagePositionPatient = [round(float(v), 6) for v in ipp]
    ds.ImageOrientationPatient = [round(float(v), 9) for v in iop]
    ds.PixelSpacing = list(pixel_spacing)
    ds.SliceThickness = 1.0
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for keyword, value in extra.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def stack_headers(
    n: int,
    *,
    rot: np.ndarray,
    origin: Sequence[float] = (-20.0, 10.0, 30.0),
    step: float = 3.0,
    **kwargs: object,
) -> list[Dataset]:
    """Headers of ``n`` slices at ``origin + k * step * normal`` (``normal = rot[:, 2]``), k = 0..n-1."""
    iop = list(rot[:, 0]) + list(rot[:, 1])
    return [
        mr_header(ipp=np.asarray(origin) + k * step * rot[:, 2], iop=iop, instance_number=k + 1, **kwargs)
        for k in range(n)
    ]


def as_series(headers: Sequence[Dataset], *, paths: Sequence[Path] | None = None) -> Series:
    """A :class:`Series` over in-memory headers (for geometry and selection tests that need no pixels)."""
    first = headers[0]
    paths = paths or [Path(f"slice_{k:03d}.dcm") for k in range(len(headers))]
    return Series(
        series_instance_uid=str(first.SeriesInstanceUID),
        study_instance_uid=str(first.StudyInstanceUID),
        modality=str(first.get("Modality", "")),
        sop_class_uid=str(first.SOPClassUID),
        description=str(first.get("SeriesDescription", "")),
        series_number=int(first.SeriesNumber) if "SeriesNumber" in first else None,
        instances=tuple(Instance(path=p, header=h) for p, h in zip(paths, headers)),
    )


def save(ds: Dataset, path: Path, pixels: np.ndarray | None = None) -> Path:
    """Write ``ds`` (plus ``pixels`` ``(Y, X)`` or ``(F, Y, X)`` uint16) as a DICOM file with preamble."""
    if pixels is not None:
        ds.PixelData = np.ascontiguousarray(pixels.astype(np.uint16)).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_stack(
    folder: Path, volume: np.ndarray, headers: Sequence[Dataset], *, names: Sequence[str] | None = None
) -> list[Path]:
    """Write ``volume[k]`` with ``headers[k]``; ``names`` (relative paths) default to ``slice_k.dcm``."""
    names = names or [f"slice_{k}.dcm" for k in range(len(headers))]
    return [save(h, folder / name, volume[k]) for k, (h, name) in enumerate(zip(headers, names))]


def enhanced_mr(
    volume: np.ndarray,
    *,
    rot: np.ndarray,
    origin: Sequence[float],
    step: float,
    pixel_spacing: Sequence[float],
    frame_order: Sequence[int],
    slope: float = 1.0,
    intercept: float = 0.0,
    **extra: object,
) -> Dataset:
    """An Enhanced MR Image dataset holding slices ``volume[frame_order[f]]`` as frame ``f``.

    Geometry lives only in the functional groups (shared: PixelMeasures, PlaneOrientation, PixelValueTransformation,
    MR timing/echo; per-frame: PlanePosition), as scanners write it.
    """
    z, rows, cols = volume.shape
    ds = mr_header(ipp=origin, iop=list(rot[:, 0]) + list(rot[:, 1]), rows=rows, cols=cols,
                   sop_class=ENHANCED_MR_IMAGE, **extra)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness"):
        delattr(ds, keyword)
    ds.NumberOfFrames = len(frame_order)
    ds.EchoPulseSequence = "SPIN"
    agent = Dataset()
    agent.CodeValue, agent.CodingSchemeDesignator, agent.CodeMeaning = "C-B0322", "SRT", "Gadobutrol"
    ds.ContrastBolusAgentSequence = DicomSequence([agent])

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = list(pixel_spacing)
    measures.SliceThickness = 1.0
    orient = Dataset()
    orient.ImageOrientationPatient = [round(float(v), 9) for v in list(rot[:, 0]) + list(rot[:, 1])]
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = slope, intercept, "US"
    timing = Dataset()
    timing.RepetitionTime = 550.0
    echo = Dataset()
    echo.EffectiveEchoTime = 9.5
    modifier = Dataset()
    modifier.InversionRecovery = "NO"
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orient])
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    shared.MRTimingAndRelatedParametersSequence = DicomSequence([timing])
    shared.MREchoSequence = DicomSequence([echo])
    shared.MRModifierSequence = DicomSequence([modifier])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])

    per_frame = []
    for k in frame_order:
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = [round(float(v), 6) for v in np.asarray(origin) + k * step * rot[:, 2]]
        item.PlanePositionSequence = DicomSequence([pos])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.PixelData = np.ascontiguousarray(volume[list(frame_order)].astype(np.uint16)).tobytes()
    return ds
