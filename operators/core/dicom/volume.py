"""Build a :class:`~operators.core.geometry.Volume` with exact patient geometry from one DICOM series.

Geometry comes from ImageOrientationPatient (IOP), ImagePositionPatient (IPP) and PixelSpacing only; never from
SliceThickness or SpacingBetweenSlices (slices may have gaps) and never from file names or InstanceNumber.

* Row direction ``r = IOP[0:3]`` is the direction of increasing column index ``i``; column direction
  ``c = IOP[3:6]`` that of increasing row index ``j``. PixelSpacing is ``[row spacing, column spacing]``:
  ``PixelSpacing[0]`` is the distance between rows (along ``c``), ``PixelSpacing[1]`` between columns (along
  ``r``). Hence the affine ``[r * PixelSpacing[1], c * PixelSpacing[0], n * slice_spacing, IPP_0]``, which is the
  DICOM formula ``P(i, j) = IPP + i * PixelSpacing[1] * r + j * PixelSpacing[0] * c`` (PS3.3 C.7.6.2.1.1).
* Slices are sorted by the projection of IPP on the normal ``n = r x c``, ascending, so ``k`` grows along ``+n``
  and the direction matrix ``[r, c, n]`` is a rotation (det +1).
* Slice spacing is the least-squares slope of those projections against ``k``; the origin is the IPP of the
  first sorted slice.

Tolerances (a series outside them raises :class:`GeometryError` naming the series, keyword, tag, found, expected):

* IOP equal between instances within 1e-4 per component (float formatting differs, real tilts are larger);
  row and column cosines unit length and orthogonal within 1e-3, then orthonormalised exactly.
* PixelSpacing equal within 1e-4 mm; Rows and Columns identical.
* Positions: no two slices within 0.01 mm along the normal; no step larger than 1.5x the median step
  (a missing slice); every slice within ``max(0.01 mm, 1% of the spacing)`` of the regular grid fitted to all
  slices (irregular spacing); every slice within ``max(0.01 mm, 10% of the smaller pixel spacing)`` of the line
  through the first slice along the normal (a sheared stack, e.g. gantry tilt, would misplace voxels).
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut

from operators.core.dicom.series import Instance, Series
from operators.core.errors import GeometryError, InputDataError
from operators.core.geometry import Grid, Volume

logger = logging.getLogger(__name__)

IOP_TOL = 1e-4
COSINE_TOL = 1e-3
PIXEL_SPACING_TOL_MM = 1e-4
SAME_POSITION_MM = 0.01
MISSING_SLICE_FACTOR = 1.5
REGULAR_TOL_MM = 0.01
REGULAR_TOL_FRACTION = 0.01
SHEAR_TOL_MM = 0.01
SHEAR_TOL_PIXEL_FRACTION = 0.1

# The logger to which pydicom reports each decoding plugin's failure.
_PYDICOM_DECODERS = "pydicom.pixels.decoders.base"
# Failures of pydicom or its pixel handlers on truncated or corrupt files.
_PIXEL_ERRORS = (OSError, EOFError, ValueError, RuntimeError, NotImplementedError, KeyError, IndexError,
                 struct.error, AttributeError, TypeError, zlib.error)


def series_to_volume(series: Series) -> tuple[Volume, tuple[Dataset, ...]]:
    """Read a series into a volume.

    Returns:
        ``(volume, headers)``: ``volume.array`` is ``(Z, Y, X)`` float32 (stored values after RescaleSlope /
        RescaleIntercept or the Modality LUT), ``volume.grid.affine`` maps ``(i, j, k)`` to LPS mm voxel centres,
        ``volume.frame_of_reference_uid`` is the series' FrameOfReferenceUID; ``headers[k]`` is the header of
        array slice ``k`` (per-frame header for enhanced multi-frame instances).

    Raises:
        GeometryError: the instances do not form one regular, unsheared stack (see the module docstring).
        InputDataError: pixel data cannot be read or decoded; the message names the file and TransferSyntaxUID.
    """
    instances, affine = _sorted_geometry(series)
    frame_uid = _frame_of_reference(series, instances)
    rows, cols = int(instances[0].header.Rows), int(instances[0].header.Columns)
    array = _read_pixels(series, instances, rows, cols)
    grid = Grid(shape=array.shape, affine=affine)
    logger.info("%s: volume %s", series.label(), grid.describe())
    return Volume(array=array, grid=grid, frame_of_reference_uid=frame_uid), tuple(i.header for i in instances)


# ------------------------------------------------------------------------------------------------ geometry
def _name(instance: Instance) -> str:
    frame = f" frame {instance.frame + 1}" if instance.frame is not None else ""  # DICOM frame numbers are 1-based
    return f"{instance.path.name}{frame}"


def _vector(series: Series, instance: Instance, keyword: str, tag: str, size: int) -> np.ndarray:
    value = instance.header.get(keyword)
    if value is None or value == "":
        raise GeometryError(
            f"{series.label()}: {keyword} {tag} is missing in {_name(instance)}; expected {size} values"
        )
    values = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    try:
        vec = np.array([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeometryError(
            f"{series.label()}: {keyword} {tag} in {_name(instance)} is not numeric: {value!r}"
        ) from exc
    if vec.shape != (size,) or not np.all(np.isfinite(vec)):
        raise GeometryError(
            f"{series.label()}: {keyword} {tag} in {_name(instance)} has value {values}; expected {size} numbers"
        )
    return vec


def _sorted_geometry(series: Series) -> tuple[list[Instance], np.ndarray]:
    """Instances in slice order and the 4x4 affine; checks every rule in the module docstring."""
    label = series.label()
    instances = list(series.instances)
    if len(instances) < 2:
        raise GeometryError(
            f"{label}: a volume needs at least 2 slices, found {len(instances)} (ImagePositionPatient (0020,0032))"
        )
    first = instances[0]
    iop0 = _vector(series, first, "ImageOrientationPatient", "(0020,0037)", 6)
    ps0 = _vector(series, first, "PixelSpacing", "(0028,0030)", 2)
    size0 = (first.header.get("Rows"), first.header.get("Columns"))
    for inst in instances[1:]:
        iop = _vector(series, inst, "ImageOrientationPatient", "(0020,0037)", 6)
        if np.max(np.abs(iop - iop0)) > IOP_TOL:
            raise GeometryError(
                f"{label}: ImageOrientationPatient (0020,0037) differs between instances; found {iop.tolist()} in "
                f"{_name(inst)}, expected {iop0.tolist()} (as in {_name(first)})"
            )
        ps = _vector(series, inst, "PixelSpacing", "(0028,0030)", 2)
        if np.max(np.abs(ps - ps0)) > PIXEL_SPACING_TOL_MM:
            raise GeometryError(
                f"{label}: PixelSpacing (0028,0030) differs between instances; found {ps.tolist()} in {_name(inst)}, "
                f"expected {ps0.tolist()} (as in {_name(first)})"
            )
        size = (inst.header.get("Rows"), inst.header.get("Columns"))
        if size != size0:
            raise GeometryError(
                f"{label}: Rows (0028,0010) / Columns (0028,0011) differ between instances; found {size} in "
                f"{_name(inst)}, expected {size0} (as in {_name(first)})"
            )
    if np.any(ps0 <= 0):
        raise GeometryError(f"{label}: PixelSpacing (0028,0030) is {ps0.tolist()}; expected two positive values")

    r, c = iop0[:3], iop0[3:]
    if abs(np.linalg.norm(r) - 1) > COSINE_TOL or abs(np.linalg.norm(c) - 1) > COSINE_TOL or abs(r @ c) > COSINE_TOL:
        raise GeometryError(
            f"{label}: ImageOrientationPatient (0020,0037) is {iop0.tolist()}; expected two orthogonal unit vectors "
            f"(|row| {np.linalg.norm(r):.6f}, |col| {np.linalg.norm(c):.6f}, row.col {r @ c:.2e})"
        )
    r = r / np.linalg.norm(r)
    c = c - (c @ r) * r
    c = c / np.linalg.norm(c)
    n = np.cross(r, c)

    positions = np.array([_vector(series, i, "ImagePositionPatient", "(0020,0032)", 3) for i in instances])
    along = positions @ n
    order = np.argsort(along, kind="stable")
    instances = [instances[o] for o in order]
    positions, along = positions[order], along[order]

    steps = np.diff(along)
    k = int(np.argmin(steps))
    if steps[k] < SAME_POSITION_MM:
        raise GeometryError(
            f"{label}: ImagePositionPatient (0020,0032) {positions[k].tolist()} is shared by {_name(instances[k])} "
            f"and {_name(instances[k + 1])} (distance along the normal {steps[k]:.4f} mm); expected one slice per "
            "position (several echoes, phases or time points in one series?)"
        )
    median = float(np.median(steps))
    k = int(np.argmax(steps))
    if steps[k] > MISSING_SLICE_FACTOR * median:
        raise GeometryError(
            f"{label}: ImagePositionPatient (0020,0032) steps {steps[k]:.4f} mm between {_name(instances[k])} and "
            f"{_name(instances[k + 1])}; expected about {median:.4f} mm (the median step): a slice is missing"
        )
    index = np.arange(len(along), dtype=np.float64)
    spacing, intercept = np.polyfit(index, along, 1)
    deviation = along - (intercept + spacing * index)
    k = int(np.argmax(np.abs(deviation)))
    tol = max(REGULAR_TOL_MM, REGULAR_TOL_FRACTION * spacing)
    if abs(deviation[k]) > tol:
        raise GeometryError(
            f"{label}: ImagePositionPatient (0020,0032) spacing is irregular; {_name(instances[k])} lies "
            f"{deviation[k]:+.4f} mm from a regular {spacing:.4f} mm grid; expected within {tol:.4f} mm"
        )
    offsets = positions - positions[0]
    in_plane = np.linalg.norm(offsets - np.outer(offsets @ n, n), axis=1)
    k = int(np.argmax(in_plane))
    tol = max(SHEAR_TOL_MM, SHEAR_TOL_PIXEL_FRACTION * float(np.min(ps0)))
    if in_plane[k] > tol:
        raise GeometryError(
            f"{label}: ImagePositionPatient (0020,0032) of {_name(instances[k])} is {in_plane[k]:.4f} mm off the "
            f"slice normal of ImageOrientationPatient (0020,0037) through the first slice; expected within "
            f"{tol:.4f} mm (sheared stack or gantry tilt; not supported)"
        )

    affine = np.eye(4)
    affine[:3, 0] = r * ps0[1]
    affine[:3, 1] = c * ps0[0]
    affine[:3, 2] = n * spacing
    affine[:3, 3] = positions[0]
    return instances, affine


def _frame_of_reference(series: Series, instances: list[Instance]) -> str | None:
    uids = {str(i.header.get("FrameOfReferenceUID", "") or "") for i in instances}
    if len(uids) > 1:
        raise GeometryError(
            f"{series.label()}: FrameOfReferenceUID (0020,0052) differs between instances; found {sorted(uids)}, "
            "expected one value"
        )
    uid = uids.pop()
    return uid or None


# ------------------------------------------------------------------------------------------------ pixels
def _transfer_syntax(header: Dataset) -> str:
    meta = getattr(header, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return f"{uid} ({uid.name})" if uid else "(unknown)"


def _read_pixels(series: Series, instances: list[Instance], rows: int, cols: int) -> np.ndarray:
    """``(Z, Y, X)`` float32 after the modality LUT (RescaleSlope/Intercept); each file is decoded once."""
    label = series.label()
    array = np.empty((len(instances), rows, cols), dtype=np.float32)
    cache: dict[Path, np.ndarray] = {}
    for k, inst in enumerate(instances):
        spp = int(inst.header.get("SamplesPerPixel", 1) or 1)
        if spp != 1:
            raise InputDataError(
                f"{label}: SamplesPerPixel (0028,0002) is {spp} in {inst.path}; expected 1 (grey-scale MR)"
            )
        if inst.frame is None:
            pixels = _decode(label, inst)
        else:  # frames of a multi-frame file: decode the file once
            if inst.path not in cache:
                cache[inst.path] = _decode(label, inst)
            pixels = cache[inst.path]
        if inst.frame is not None and pixels.ndim == 3:
            if inst.frame >= pixels.shape[0]:
                raise InputDataError(
                    f"{label}: {inst.path} holds {pixels.shape[0]} frames; frame {inst.frame + 1} was expected "
                    f"(NumberOfFrames (0028,0008)), TransferSyntaxUID {_transfer_syntax(inst.header)}"
                )
            pixels = pixels[inst.frame]
        if pixels.shape != (rows, cols):
            raise InputDataError(
                f"{label}: {inst.path} decodes to shape {pixels.shape}; expected (Rows, Columns) = {(rows, cols)} "
                f"(multi-frame without per-frame geometry is not supported), TransferSyntaxUID "
                f"{_transfer_syntax(inst.header)}"
            )
        array[k] = apply_modality_lut(pixels, inst.header)
    return array


def _decode(label: str, inst: Instance) -> np.ndarray:
    try:
        ds = pydicom.dcmread(inst.path)
    except _PIXEL_ERRORS as exc:
        raise InputDataError(
            f"{label}: cannot read {inst.path} (TransferSyntaxUID {_transfer_syntax(inst.header)}): "
            f"{type(exc).__name__}: {_one_line(exc)}"
        ) from exc
    if "PixelData" not in ds:
        raise InputDataError(
            f"{label}: PixelData (7FE0,0010) of {inst.path} is missing or truncated (TransferSyntaxUID "
            f"{_transfer_syntax(inst.header)}); expected Rows x Columns = {ds.get('Rows')} x {ds.get('Columns')} pixels"
        )
    try:
        with _decoder_failures_at_debug():
            return ds.pixel_array
    except _PIXEL_ERRORS as exc:
        raise InputDataError(
            f"{label}: cannot decode PixelData (7FE0,0010) of {inst.path} (TransferSyntaxUID "
            f"{_transfer_syntax(inst.header)}): {type(exc).__name__}: {_one_line(exc)}"
        ) from exc


class _ToDebug(logging.Filter):
    """Re-log a pixel decoder's failure records at DEBUG under this module's logger, and drop the original."""

    def filter(self, record: logging.LogRecord) -> bool:
        logger.debug("pixel decoder: %s", record.getMessage())
        return False


@contextmanager
def _decoder_failures_at_debug() -> Iterator[None]:
    """pydicom logs each failed decoding plugin at ERROR, with a traceback, before raising one error that lists
    them all; that error is what this module reports, once, so the per-plugin records go to DEBUG."""
    source = logging.getLogger(_PYDICOM_DECODERS)
    quiet = _ToDebug()
    source.addFilter(quiet)
    try:
        yield
    finally:
        source.removeFilter(quiet)


def _one_line(exc: BaseException) -> str:
    """A decoder's message on one line (pydicom lists each plugin's failure on its own line)."""
    return " ".join(str(exc).split())
