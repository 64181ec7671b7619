"""Test-only RTSTRUCT reader: contours back to a voxel mask, independent of the writer's code path.

Contour points are mapped back to continuous indices with the inverse affine, each contour is placed on the slice
whose SOPInstanceUID its ContourImageSequence names, and the polygons of a slice are filled with the even-odd rule
(XOR of matplotlib's point-in-polygon test) at voxel centres.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.path import Path as MplPath
from pydicom import Dataset

from operators.core.geometry import Grid

# A contour point may lie this far (in voxels) off the plane of the slice it references.
PLANE_TOLERANCE_VOXELS = 1e-2


def fill_even_odd(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Fill closed polygons with the even-odd rule at pixel centres.

    Args:
        polygons: ``(N, 2)`` arrays of ``(col, row)`` index coordinates, closing edge implied.
        shape: ``(rows, cols)`` of the output.

    Returns:
        ``(rows, cols)`` bool: True where a pixel centre ``(c, r)`` is inside an odd number of polygons.
    """
    rows, cols = shape
    out = np.zeros(shape, dtype=bool)
    for polygon in polygons:
        xy = np.asarray(polygon, dtype=np.float64)
        lo = np.maximum(np.floor(xy.min(axis=0)).astype(int), 0)
        hi = np.minimum(np.ceil(xy.max(axis=0)).astype(int), [cols - 1, rows - 1])
        if np.any(hi < lo):
            continue
        ii, jj = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1))
        path = MplPath(np.vstack([xy, xy[:1]]))  # closing vertex written out
        inside = path.contains_points(np.column_stack([ii.ravel(), jj.ravel()]), radius=0.0)
        out[jj.ravel()[inside], ii.ravel()[inside]] ^= True
    return out


def rasterize_rtstruct(
    ds: Dataset,
    reference_headers: Sequence[Dataset],
    grid: Grid,
    *,
    roi_number: int | None = None,
) -> np.ndarray:
    """Rasterise one ROI of an RT Structure Set on ``grid``.

    Args:
        ds: the RTSTRUCT dataset.
        reference_headers: headers of the images; ``reference_headers[k]`` is slice ``k`` of ``grid``.
        grid: the reference grid.
        roi_number: ReferencedROINumber to read; None reads the only ROI (error if there are several).

    Returns:
        ``(Z, Y, X)`` bool mask: True where a voxel centre is inside an odd number of the slice's contours.
    """
    slice_of = {str(h.SOPInstanceUID): k for k, h in enumerate(reference_headers)}
    items = list(ds.ROIContourSequence)
    if roi_number is None:
        if len(items) != 1:
            raise ValueError(f"RTSTRUCT holds {len(items)} ROIs; name roi_number")
        roi = items[0]
    else:
        matches = [item for item in items if int(item.ReferencedROINumber) == roi_number]
        if len(matches) != 1:
            raise ValueError(f"RTSTRUCT holds {len(matches)} ROI Contour items for ROI number {roi_number}")
        roi = matches[0]

    per_slice: dict[int, list[np.ndarray]] = {}
    for contour in roi.get("ContourSequence", []):
        if contour.ContourGeometricType != "CLOSED_PLANAR":
            raise ValueError(f"contour type {contour.ContourGeometricType} is not CLOSED_PLANAR")
        uid = str(contour.ContourImageSequence[0].ReferencedSOPInstanceUID)
        if uid not in slice_of:
            raise ValueError(f"contour references image {uid}, which is not in the reference series")
        k = slice_of[uid]
        points = np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3)
        if len(points) != int(contour.NumberOfContourPoints):
            raise ValueError(f"NumberOfContourPoints {contour.NumberOfContourPoints} but {len(points)} points")
        ijk = grid.lps_to_index(points)
        off_plane = np.max(np.abs(ijk[:, 2] - k))
        if off_plane > PLANE_TOLERANCE_VOXELS:
            raise ValueError(f"contour on image {uid} lies {off_plane:.4f} voxels off slice {k}")
        per_slice.setdefault(k, []).append(ijk[:, :2])

    out = np.zeros(grid.shape, dtype=bool)
    for k, polygons in per_slice.items():
        out[k] = fill_even_odd(polygons, grid.shape[1:])
    return out
