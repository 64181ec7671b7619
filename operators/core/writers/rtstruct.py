"""RT Structure Set writer: a binary mask on a reference series' grid to a DICOM RTSTRUCT.

Contours trace voxel *edges*, not voxel centres: every polygon runs along pixel corners, so a reader that fills the
polygons of a slice with the even-odd rule and tests voxel centres gets back exactly the voxels of the mask (no
voxel centre lies on a contour). Readers that instead OR the contours of a slice (plastimatch 1.9.4, even with
``--xor-contours``) get the mask with its in-slice holes filled: a superset of the mask, within its outer outlines.

Polygon conventions (:func:`mask_to_polygons`):

* Points are ``(col, row)`` = ``(i, j)`` in index space; vertices lie at pixel corners ``(c +- 0.5, r +- 0.5)``.
* One closed polygon per boundary loop: the outer boundary of each island and the boundary of each hole are
  separate polygons; nesting (island in a hole in an island) is expressed by the even-odd rule alone.
* Orientation: outer boundaries have positive shoelace area in ``(i, j)`` coordinates, holes negative. Since the
  slice normal of a DICOM image is ``row cosine x column cosine`` (+i x +j), outer boundaries run
  counter-clockwise seen from the side the slice normal points to, and holes clockwise.
* Every polygon is simple: no vertex appears twice in one polygon. Where two foreground pixels touch only at a
  corner (a "saddle" vertex), the boundary is split there, so such pixels give separate polygons that share that
  one vertex (and a background pocket closed only by a diagonal contact gives a hole polygon touching the outer
  one at that vertex). Splitting a closed edge cycle at a repeated vertex keeps the multiset of edges, so the
  even-odd fill is unchanged.
* Only corners where the direction changes are kept (no collinear vertices); each polygon starts at its top-most,
  then left-most vertex; polygons are ordered by that start vertex, outer before hole.

RTSTRUCT content decisions:

* Model provenance: ``ROIGenerationDescription`` (LO, 64 chars) holds model name, version and the first 16 hex
  digits of its sha256; the full sha256 is in ``ROIDescription`` (ST) and ``StructureSetDescription`` (ST), both
  type 3 attributes of the Structure Set module; ``SoftwareVersions`` holds the product and model versions.
* An empty mask gives a valid structure set that still declares the ROI (StructureSetROISequence, ROI Contour and
  RT ROI Observations items) with no ``ContourSequence``, which is type 3 in the ROI Contour module: the planner sees
  an empty "GTV" rather than a missing one.
* ``SpecificCharacterSet`` is copied from the reference (the planning system already reads that character set),
  ``ISO_IR 100`` where the reference has none.
* Contour points are ``mask.grid.index_to_lps`` of the corners, shifted per slice by the (sub-tolerance) difference
  between the reference image's ImagePositionPatient and the grid's slice origin, so every contour lies exactly in
  the plane of the image it references even when the stack is only nearly regular.
* Multi-frame references (an enhanced MR instance holding the slices as frames): a reference header with
  ReferencedFrameNumber (0008,1160), as ``multiframe.frame_headers`` makes them, is that frame of
  its SOP instance. Each contour's ContourImageSequence item then names the frame (ReferencedFrameNumber); the
  RTReferencedSeriesSequence lists each SOP instance once, with the frame numbers only where the reference does not
  use all of its frames (PS3.3 Image SOP Instance Reference Macro).
* Patient and study values are copied as elements (never re-assigned, so pydicom never quotes them in a warning);
  dates and times that do not parse for their VR are written empty (:mod:`operators.core.dicom.values`).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
from collections.abc import Sequence

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from operators.core.dicom.values import copy_element
from operators.core.errors import GeometryError, InputDataError, ModelSpecError
from operators.core.geometry import Volume
from operators.core.labels import Structure
from operators.core.product import (
    MANUFACTURER,
    PRODUCT_NAME,
    RTSTRUCT_SERIES_NUMBER,
    SOFTWARE_VERSION,
    UID_PREFIX,
)
from operators.core.writers.polygons import mask_to_polygons

logger = logging.getLogger(__name__)

RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
# Retired "Detached Study Management" SOP class: what RTReferencedStudySequence references by common practice.
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"
# Contour coordinates are written rounded to this many decimals of a millimetre.
CONTOUR_DECIMALS = 3
# A reference image's ImagePositionPatient may lie this fraction of the smallest voxel spacing from where the mask
# grid puts its slice origin (a quarter voxel: far above the deviations series_volume accepts, far below a
# misordered or foreign reference).
SLICE_POSITION_TOLERANCE_VOXELS = 0.25
# Tolerance on direction cosines (ImageOrientationPatient) and on PixelSpacing (mm).
ORIENTATION_TOLERANCE = 1e-3
PIXEL_SPACING_TOLERANCE_MM = 1e-3

_PATIENT_KEYWORDS_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
_PATIENT_KEYWORDS_TYPE3 = (
    "IssuerOfPatientID",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
)
_STUDY_KEYWORDS_TYPE2 = ("StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")
_STUDY_KEYWORDS_TYPE3 = ("StudyDescription",)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_LO_MAX = 64


def format_ds(values: np.ndarray) -> list[str]:
    """Decimal String values rounded to ``CONTOUR_DECIMALS`` mm, trailing zeros dropped, each at most 16 chars."""
    out = []
    for v in np.round(np.asarray(values, dtype=np.float64).ravel(), CONTOUR_DECIMALS).tolist():
        s = f"{v:.{CONTOUR_DECIMALS}f}".rstrip("0").rstrip(".")
        if s in ("-0", ""):
            s = "0"
        if len(s) > 16 or not np.isfinite(v):
            raise GeometryError(f"contour coordinate {v!r} mm cannot be written as a DICOM DS value (16 chars)")
        out.append(s)
    return out


def build_rtstruct(
    mask: Volume,
    reference: Sequence[Dataset],
    *,
    structure: Structure,
    model: dict,
    series_number: int = RTSTRUCT_SERIES_NUMBER,
    series_description: str = "GTV auto-contour (UNAPPROVED)",
    extra_rois: Sequence[tuple[Volume, Structure, dict]] = (),
    verdict: str = "",
    verdict_note: str = "",
) -> Dataset:
    """An RT Structure Set with one ROI whose contours are the exact voxel-edge boundary of ``mask``, and one more
    ROI per ``extra_rois`` entry after it (organs at risk, e.g. the brain), each with its own model's provenance.

    Args:
        mask: ``(Z, Y, X)`` mask on the reference series' grid (nonzero = inside); slice ``k`` is ``reference[k]``.
        reference: headers of the reference images, one per slice, in the mask's slice order.
        structure: the registry entry naming the ROI (ROIName, RTROIInterpretedType, colour).
        model: ``{"name": str, "version": str, "sha256": 64 lowercase hex digits}`` of the model that made the mask.
        series_number: SeriesNumber of the new RT series (fixed, never random).
        series_description: SeriesDescription of the new RT series.
        verdict: the quality verdict's tag (``"REVIEW"``, ``"UNRELIABLE"``; ``""`` for ok): it is put where a
            planning system shows it, StructureSetLabel (SH, 16) as ``"GTV REVIEW"`` and the SeriesDescription.
        verdict_note: one sentence on why (the flags), appended to StructureSetDescription (ST).

    Returns:
        The dataset with ``file_meta`` (Explicit VR Little Endian), ready for
        ``save_as(path, enforce_file_format=True)``.

    Raises:
        InputDataError: reference headers missing or inconsistent (study, series, frame of reference, duplicates).
        GeometryError: the mask grid does not lie on the reference images.
        ModelSpecError: ``model`` lacks name, version or a valid sha256.
    """
    name, version, sha256 = _check_model(model)
    for m, _, other in extra_rois:
        _check_model(other)
        _check_reference(m, reference)
    _check_reference(mask, reference)
    first = reference[0]
    now = dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")

    ds = Dataset()
    ds.SpecificCharacterSet = first.get("SpecificCharacterSet", "ISO_IR 100")
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = generate_uid(prefix=UID_PREFIX)

    # Patient and General Study modules: copied from the reference, type 2 left empty where absent.
    for keyword in _PATIENT_KEYWORDS_TYPE2 + _STUDY_KEYWORDS_TYPE2:
        elem = copy_element(first, keyword, where="RTSTRUCT")
        if elem is None:
            setattr(ds, keyword, "")
        else:
            ds.add(elem)
    has_method = "DeidentificationMethod" in first or "DeidentificationMethodCodeSequence" in first
    for keyword in _PATIENT_KEYWORDS_TYPE3 + _STUDY_KEYWORDS_TYPE3:
        # PatientIdentityRemoved YES needs a de-identification method (type 1C): copy it only together with one.
        if keyword in first and (keyword != "PatientIdentityRemoved" or has_method):
            ds.add(copy_element(first, keyword, where="RTSTRUCT"))
    ds.StudyInstanceUID = first.StudyInstanceUID

    # Frame of Reference module (part of the RT Structure Set IOD in current editions of PS3.3): the reference's.
    ds.FrameOfReferenceUID = first.FrameOfReferenceUID
    ds.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")

    # RT Series.
    ds.Modality = "RTSTRUCT"
    ds.SeriesInstanceUID = generate_uid(prefix=UID_PREFIX)
    ds.SeriesNumber = int(series_number)
    ds.SeriesDate, ds.SeriesTime = date, time
    if verdict:
        series_description = series_description.replace("auto-contour", f"auto-contour {verdict}", 1)
    ds.SeriesDescription = _fit_lo(series_description)
    ds.OperatorsName = ""

    # General Equipment.
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = PRODUCT_NAME
    ds.SoftwareVersions = [SOFTWARE_VERSION, _fit_lo(f"{name} {version}")]

    # Structure Set.
    provenance = f"model {name} version {version} sha256 {sha256}"
    ds.StructureSetLabel = (f"{structure.tg263_name} {verdict}" if verdict else "AUTO " + structure.tg263_name)[:16]
    ds.StructureSetName = _fit_lo(series_description)
    ds.StructureSetDescription = (
        f"Automatic contours by {PRODUCT_NAME} {SOFTWARE_VERSION}; {provenance}. Unapproved: review before use."
        + (f" Quality verdict {verdict}: {verdict_note}" if verdict else "")
    )[:1024]
    ds.InstanceNumber = 1
    ds.StructureSetDate, ds.StructureSetTime = date, time
    frame_uid = first.FrameOfReferenceUID
    ds.ReferencedFrameOfReferenceSequence = [_referenced_frame(reference)]
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    counts = []
    for number, (m, struct, mdl) in enumerate([(mask, structure, model), *extra_rois], start=1):
        roi, roi_contour, observation = _roi(number, m, struct, mdl, reference, frame_uid)
        ds.StructureSetROISequence.append(roi)
        ds.ROIContourSequence.append(roi_contour)
        ds.RTROIObservationsSequence.append(observation)
        counts.append((struct.tg263_name, len(roi_contour.get("ContourSequence", []))))
    contours = ds.ROIContourSequence[0].get("ContourSequence", [])

    # Approval.
    ds.ApprovalStatus = "UNAPPROVED"

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    pydicom.dataset.validate_file_meta(meta, enforce_standard=True)
    ds.file_meta = meta

    slices_with = int(np.count_nonzero(np.asarray(mask.array).reshape(mask.grid.shape[0], -1).any(axis=1)))
    logger.info(
        "RTSTRUCT %s (series %s, #%d): ROI %r, %d contours on %d of %d slices%s; %s",
        ds.SOPInstanceUID,
        ds.SeriesInstanceUID,
        ds.SeriesNumber,
        structure.tg263_name,
        len(contours),
        slices_with,
        mask.grid.shape[0],
        "".join(f"; ROI {n!r}, {c} contours" for n, c in counts[1:]),
        provenance,
    )
    return ds


def _roi(number: int, mask: Volume, structure: Structure, model: dict, reference: Sequence[Dataset],
         frame_uid: str) -> tuple[Dataset, Dataset, Dataset]:
    """StructureSetROI, ROIContour and RTROIObservations items of ROI ``number``."""
    name, version, sha256 = _check_model(model)
    provenance = f"model {name} version {version} sha256 {sha256}"
    roi = Dataset()
    roi.ROINumber = number
    roi.ReferencedFrameOfReferenceUID = frame_uid
    roi.ROIName = structure.tg263_name
    roi.ROIDescription = f"{structure.description}; {provenance}"
    roi.ROIGenerationAlgorithm = "AUTOMATIC"
    roi.ROIGenerationDescription = _generation_description(name, version, sha256)
    contours = _contours(mask, reference)
    roi_contour = Dataset()
    roi_contour.ROIDisplayColor = [int(c) for c in structure.color_rgb]
    roi_contour.ReferencedROINumber = number
    if contours:
        roi_contour.ContourSequence = contours
    else:
        logger.warning("RTSTRUCT ROI %r has no contours: the mask is empty", structure.tg263_name)
    observation = Dataset()
    observation.ObservationNumber = number
    observation.ReferencedROINumber = number
    observation.RTROIInterpretedType = structure.rt_roi_interpreted_type
    observation.ROIInterpreter = ""
    return roi, roi_contour, observation


def _contours(mask: Volume, reference: Sequence[Dataset]) -> list[Dataset]:
    """One ContourSequence item per boundary polygon of each slice, points at voxel corners in LPS mm."""
    array = np.asarray(mask.array)
    items = []
    slice_origins = mask.grid.index_to_lps(np.column_stack([np.zeros(len(array)), np.zeros(len(array)),
                                                            np.arange(len(array))]))
    for k in range(array.shape[0]):
        if not array[k].any():
            continue
        # Anchor the slice at its image's own position (differs from the grid's by less than the checked tolerance).
        shift = np.asarray(reference[k].ImagePositionPatient, dtype=np.float64) - slice_origins[k]
        image = _image_reference(reference[k], [_frame_number(reference[k])])
        for polygon in mask_to_polygons(array[k]):
            ijk = np.column_stack([polygon, np.full(len(polygon), float(k))])
            lps = mask.grid.index_to_lps(ijk) + shift
            item = Dataset()
            item.ContourNumber = len(items) + 1
            item.ContourImageSequence = [copy.deepcopy(image)]
            item.ContourGeometricType = "CLOSED_PLANAR"
            item.NumberOfContourPoints = len(polygon)
            item.ContourData = format_ds(lps)
            items.append(item)
    return items


def _frame_number(header: Dataset) -> int | None:
    """ReferencedFrameNumber (0008,1160) of a per-frame reference header (1-based), None for a single-frame image."""
    value = header.get("ReferencedFrameNumber")
    return None if value in (None, "") else int(value)


def _image_reference(header: Dataset, frames: Sequence[int | None]) -> Dataset:
    """An Image SOP Instance Reference item; ReferencedFrameNumber only where not every frame is referenced."""
    image = Dataset()
    image.ReferencedSOPClassUID = header.SOPClassUID
    image.ReferencedSOPInstanceUID = header.SOPInstanceUID
    numbers = sorted(f for f in frames if f is not None)
    frame_count = int(header.get("NumberOfFrames", 1) or 1)
    if numbers and len(set(numbers)) < frame_count:
        image.ReferencedFrameNumber = numbers if len(numbers) > 1 else numbers[0]
    return image


def _referenced_frame(reference: Sequence[Dataset]) -> Dataset:
    """ReferencedFrameOfReferenceSequence item down to every reference image (each SOP instance once)."""
    first = reference[0]
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    frames: dict[str, list[int | None]] = {}
    headers: dict[str, Dataset] = {}
    for header in reference:
        uid = str(header.SOPInstanceUID)
        headers.setdefault(uid, header)
        frames.setdefault(uid, []).append(_frame_number(header))
    series.ContourImageSequence = DicomSequence([_image_reference(headers[uid], frames[uid]) for uid in headers])
    study = Dataset()
    study.ReferencedSOPClassUID = DETACHED_STUDY_MANAGEMENT
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = [study]
    return frame


def _fit_lo(text: str) -> str:
    """Truncate to the 64 characters of a LO value."""
    return text if len(text) <= _LO_MAX else text[: _LO_MAX - 3] + "..."


def _generation_description(name: str, version: str, sha256: str) -> str:
    """``"<name> <version> sha256:<16 hex>"`` within 64 characters, shortening the name first."""
    tail = f" {version} sha256:{sha256[:16]}"
    room = _LO_MAX - len(tail)
    if room < 8:
        return _fit_lo(f"{name}{tail}")
    return (name if len(name) <= room else name[: room - 3] + "...") + tail


def _check_model(model: dict) -> tuple[str, str, str]:
    missing = [key for key in ("name", "version", "sha256") if not str(model.get(key, "") or "").strip()]
    if missing:
        raise ModelSpecError(f"RTSTRUCT model description lacks {missing}; found keys {sorted(model)}")
    sha256 = str(model["sha256"]).strip().lower()
    if not _SHA256.match(sha256):
        raise ModelSpecError(
            f"RTSTRUCT model sha256 must be 64 hexadecimal digits, found {str(model['sha256'])[:80]!r}"
        )
    return str(model["name"]).strip(), str(model["version"]).strip(), sha256


def _check_reference(mask: Volume, reference: Sequence[Dataset]) -> None:
    """Refuse references that are inconsistent or whose images do not lie on the mask's slices."""
    z, rows, cols = mask.grid.shape
    if len(reference) != z:
        raise GeometryError(f"RTSTRUCT reference has {len(reference)} images, expected one per mask slice ({z})")
    required = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
    for k, header in enumerate(reference):
        absent = [kw for kw in required + ("ImagePositionPatient",) if kw not in header]
        if absent:
            raise InputDataError(f"RTSTRUCT reference image {k} lacks {absent}")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        values = sorted({str(h.data_element(keyword).value) for h in reference})
        if len(values) != 1:
            raise InputDataError(f"RTSTRUCT reference images differ in {keyword}: found {values}, expected one value")
    seen: dict[tuple[str, int | None], int] = {}
    for k, header in enumerate(reference):
        key = (str(header.SOPInstanceUID), _frame_number(header))
        if key in seen:
            frame = "without ReferencedFrameNumber (0008,1160)" if key[1] is None else f"frame {key[1]}"
            raise InputDataError(
                f"RTSTRUCT reference images {seen[key]} and {k} are both SOPInstanceUID (0008,0018) {key[0]} {frame}; "
                "expected one image per slice (frames of a multi-frame instance must name their frame)"
            )
        seen[key] = k
    frame_uid = str(reference[0].FrameOfReferenceUID)
    if mask.frame_of_reference_uid is not None and mask.frame_of_reference_uid != frame_uid:
        raise GeometryError(
            f"mask FrameOfReferenceUID {mask.frame_of_reference_uid} differs from the reference's "
            f"FrameOfReferenceUID (0020,0052) {frame_uid}"
        )
    grid = mask.grid
    expected_positions = grid.index_to_lps(np.column_stack([np.zeros(z), np.zeros(z), np.arange(z)]))
    direction = grid.direction
    tolerance_mm = SLICE_POSITION_TOLERANCE_VOXELS * float(np.min(grid.spacing))
    for k, header in enumerate(reference):
        found = np.asarray(header.ImagePositionPatient, dtype=np.float64)
        if found.shape != (3,) or np.linalg.norm(found - expected_positions[k]) > tolerance_mm:
            raise GeometryError(
                f"RTSTRUCT reference image {k} ({header.SOPInstanceUID}): ImagePositionPatient (0020,0032) "
                f"{np.round(found, 4).tolist()} is not the mask grid's slice origin "
                f"{np.round(expected_positions[k], 4).tolist()} (tolerance {tolerance_mm:.4f} mm)"
            )
        if "ImageOrientationPatient" in header:
            iop = np.asarray(header.ImageOrientationPatient, dtype=np.float64)
            expected = np.concatenate([direction[:, 0], direction[:, 1]])
            if iop.shape != (6,) or np.max(np.abs(iop - expected)) > ORIENTATION_TOLERANCE:
                raise GeometryError(
                    f"RTSTRUCT reference image {k} ({header.SOPInstanceUID}): ImageOrientationPatient (0020,0037) "
                    f"{np.round(iop, 6).tolist()} differs from the mask grid's {np.round(expected, 6).tolist()}"
                )
        if "Rows" in header and "Columns" in header and (int(header.Rows), int(header.Columns)) != (rows, cols):
            raise GeometryError(
                f"RTSTRUCT reference image {k} ({header.SOPInstanceUID}): Rows, Columns (0028,0010/0011) "
                f"{int(header.Rows)}, {int(header.Columns)} differ from the mask's {rows}, {cols}"
            )
        if "PixelSpacing" in header:
            # PixelSpacing is (row spacing, column spacing) = (spacing along j, spacing along i).
            found_spacing = np.asarray(header.PixelSpacing, dtype=np.float64)[::-1]
            if np.max(np.abs(found_spacing - grid.spacing[:2])) > PIXEL_SPACING_TOLERANCE_MM:
                raise GeometryError(
                    f"RTSTRUCT reference image {k} ({header.SOPInstanceUID}): PixelSpacing (0028,0030) "
                    f"{np.asarray(header.PixelSpacing, dtype=float).tolist()} differs from the mask grid's "
                    f"{np.round(grid.spacing[1::-1], 6).tolist()}"
                )
