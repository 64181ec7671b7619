"""Volumes with their patient geometry, and resampling between grids.

Conventions, used everywhere in this project:

* Arrays are indexed ``array[k, j, i]``, shape ``(Z, Y, X)`` = (slices, rows, columns), as SimpleITK's
  ``GetArrayFromImage`` returns them.
* A grid's ``affine`` is a 4x4 matrix mapping a voxel index ``(i, j, k, 1)`` (column, row, slice; note the
  reversed order against the array axes) to the voxel *centre* in DICOM patient coordinates (LPS, mm). Its first
  three columns are ``direction[:, n] * spacing[n]``; its last column is the origin (centre of voxel 0,0,0).
* A grid's direction is orthonormal. DICOM stacks that are sheared (gantry tilt) are refused when the volume is
  built, not here.

Resampling is written once, in :func:`resample`, on SimpleITK (imported where used: code that only handles
arrays on a known grid, such as training from a prepared cache, runs without it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from operators.core.errors import GeometryError

if TYPE_CHECKING:
    import SimpleITK as sitk

ORIENTATIONS: dict[str, np.ndarray] = {
    # Direction cosines (columns: +i, +j, +k) in LPS for the orientation codes the model metadata may name.
    # "LPS": +i towards the patient's left, +j posterior, +k superior (DICOM/ITK identity).
    "LPS": np.eye(3),
    # "RAS": +i right, +j anterior, +k superior (NIfTI/MONAI convention), expressed in LPS.
    "RAS": np.diag([-1.0, -1.0, 1.0]),
}

_ORTHO_TOL = 1e-4


@dataclass(frozen=True, eq=False)
class Grid:
    """A regular 3-D sampling grid in patient space.

    Attributes:
        shape: ``(Z, Y, X)`` number of slices, rows, columns.
        affine: ``(4, 4)`` float64, voxel index ``(i, j, k, 1)`` to LPS mm (voxel centres).
    """

    shape: tuple[int, int, int]
    affine: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        affine = np.asarray(self.affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise GeometryError(f"grid affine must be 4x4, found shape {affine.shape}")
        object.__setattr__(self, "affine", affine)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise GeometryError(f"grid shape must be three positive sizes (Z, Y, X), found {self.shape}")
        spacing = self.spacing
        if np.any(spacing <= 0):
            raise GeometryError(f"grid spacing must be positive, found {spacing.tolist()}")
        d = self.direction
        if not np.allclose(d.T @ d, np.eye(3), atol=_ORTHO_TOL):
            raise GeometryError(
                "grid direction cosines are not orthonormal (sheared stack?); found " + np.array2string(d, precision=6)
            )

    @classmethod
    def from_parts(
        cls,
        shape: tuple[int, int, int],
        *,
        origin: np.ndarray,
        spacing: np.ndarray,
        direction: np.ndarray,
    ) -> Grid:
        """Build a grid from origin (LPS mm of voxel 0 centre), spacing ``(sx, sy, sz)`` and direction columns."""
        affine = np.eye(4)
        affine[:3, :3] = np.asarray(direction, dtype=np.float64) * np.asarray(spacing, dtype=np.float64)[None, :]
        affine[:3, 3] = np.asarray(origin, dtype=np.float64)
        return cls(shape=tuple(shape), affine=affine)

    @property
    def spacing(self) -> np.ndarray:
        """``(sx, sy, sz)`` in mm: column spacing, row spacing, slice spacing."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def spacing_zyx(self) -> tuple[float, float, float]:
        """The spacing of the array axes ``(Z, Y, X)`` in mm (``spacing`` reversed): what distance transforms and
        array-space filters take."""
        sx, sy, sz = (float(v) for v in self.spacing)
        return (sz, sy, sx)

    @property
    def direction(self) -> np.ndarray:
        """``(3, 3)`` direction cosines; column ``n`` is the LPS direction of index axis ``n`` (i, j, k)."""
        return self.affine[:3, :3] / self.spacing[None, :]

    @property
    def origin(self) -> np.ndarray:
        """LPS mm of the centre of voxel (0, 0, 0)."""
        return self.affine[:3, 3].copy()

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def index_to_lps(self, ijk: np.ndarray) -> np.ndarray:
        """Map ``(N, 3)`` continuous indices ``(i, j, k)`` to ``(N, 3)`` LPS mm."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def lps_to_index(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 3)`` LPS mm to ``(N, 3)`` continuous indices ``(i, j, k)``."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return (points - self.affine[:3, 3]) @ np.linalg.inv(self.affine[:3, :3]).T

    def edge_corners_lps(self) -> np.ndarray:
        """``(8, 3)`` LPS mm of the outer corners of the grid (voxel edges, not centres)."""
        z, y, x = self.shape
        corners = np.array([[i, j, k] for i in (-0.5, x - 0.5) for j in (-0.5, y - 0.5) for k in (-0.5, z - 0.5)])
        return self.index_to_lps(corners)

    def same_as(self, other: Grid, *, atol_mm: float = 1e-3) -> bool:
        """True when both grids sample the same points (same shape, affine equal within ``atol_mm``)."""
        return self.shape == other.shape and np.allclose(self.affine, other.affine, atol=atol_mm)

    def describe(self) -> str:
        """One line for logs: shape, spacing, orientation."""
        return (
            f"shape (Z,Y,X)={self.shape}, spacing (x,y,z)={np.round(self.spacing, 4).tolist()} mm, "
            f"direction={np.round(self.direction, 4).T.tolist()}"
        )


@dataclass(frozen=True, eq=False)
class Volume:
    """An image or mask on a :class:`Grid`, in a frame of reference.

    Attributes:
        array: ``(Z, Y, X)`` array, any dtype.
        grid: where each voxel lies.
        frame_of_reference_uid: DICOM FrameOfReferenceUID, or None for data that has none (NIfTI).
    """

    array: np.ndarray = field(repr=False)
    grid: Grid
    frame_of_reference_uid: str | None = None

    def __post_init__(self) -> None:
        if tuple(self.array.shape) != self.grid.shape:
            raise GeometryError(f"array shape {self.array.shape} does not match grid shape {self.grid.shape}")

    def with_array(self, array: np.ndarray) -> Volume:
        """The same grid and frame of reference with another array of the same shape."""
        return Volume(array=array, grid=self.grid, frame_of_reference_uid=self.frame_of_reference_uid)


def grid_to_sitk(grid: Grid, array: np.ndarray | None = None) -> sitk.Image:
    """A SimpleITK image with the grid's geometry; pixels from ``array`` ``(Z, Y, X)`` or zeros."""
    import SimpleITK as sitk

    if array is None:
        image = sitk.Image([grid.shape[2], grid.shape[1], grid.shape[0]], sitk.sitkUInt8)
    else:
        image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetOrigin(tuple(grid.origin))
    image.SetSpacing(tuple(grid.spacing))
    image.SetDirection(tuple(grid.direction.flatten()))
    return image


def grid_from_sitk(image: sitk.Image) -> Grid:
    """The grid of a SimpleITK image (SimpleITK works in LPS, as DICOM does)."""
    size = image.GetSize()
    return Grid.from_parts(
        (size[2], size[1], size[0]),
        origin=np.array(image.GetOrigin()),
        spacing=np.array(image.GetSpacing()),
        direction=np.array(image.GetDirection()).reshape(3, 3),
    )


def volume_to_sitk(volume: Volume) -> sitk.Image:
    return grid_to_sitk(volume.grid, volume.array)


def volume_from_sitk(image: sitk.Image, *, frame_of_reference_uid: str | None = None) -> Volume:
    import SimpleITK as sitk

    return Volume(
        array=sitk.GetArrayFromImage(image), grid=grid_from_sitk(image), frame_of_reference_uid=frame_of_reference_uid
    )


#: SimpleITK interpolator attribute per interpolation name.
_INTERPOLATORS = {"linear": "sitkLinear", "nearest": "sitkNearestNeighbor", "bspline": "sitkBSpline"}


def resample(volume: Volume, target: Grid, *, interpolation: str = "linear", fill: float = 0.0) -> Volume:
    """Sample ``volume`` at the voxel centres of ``target``.

    Args:
        volume: source, any grid.
        target: grid to sample on.
        interpolation: ``"linear"`` for images and probabilities, ``"nearest"`` for label maps, ``"bspline"``.
        fill: value outside the source's extent.

    Returns:
        A volume on ``target`` in the source's frame of reference; float32 unless nearest-neighbour, which keeps
        the source dtype.
    """
    if interpolation not in _INTERPOLATORS:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATORS)}, found {interpolation!r}")
    import SimpleITK as sitk

    src = volume.array
    if interpolation != "nearest":
        src = src.astype(np.float32, copy=False)
    elif src.dtype == bool:
        src = src.astype(np.uint8)
    source = grid_to_sitk(volume.grid, src)
    pixel_type = source.GetPixelID() if interpolation == "nearest" else sitk.sitkFloat32
    interpolator = getattr(sitk, _INTERPOLATORS[interpolation])
    out = sitk.Resample(source, grid_to_sitk(target), sitk.Transform(), interpolator, float(fill), pixel_type)
    array = sitk.GetArrayFromImage(out)
    if volume.array.dtype == bool and interpolation == "nearest":
        array = array.astype(bool)
    return Volume(array=array, grid=target, frame_of_reference_uid=volume.frame_of_reference_uid)


def covering_grid(source: Grid, *, spacing: np.ndarray, orientation: str = "LPS") -> Grid:
    """An axis-aligned grid of the given spacing and orientation that covers ``source``'s whole extent.

    The new grid's outer edges enclose the 8 outer corners of ``source``; its voxel centres start half a voxel
    inside that box. Used to go from a series' own (possibly oblique) grid to the model grid.
    """
    if orientation not in ORIENTATIONS:
        raise GeometryError(f"orientation must be one of {sorted(ORIENTATIONS)}, found {orientation!r}")
    direction = ORIENTATIONS[orientation]
    spacing = np.asarray(spacing, dtype=np.float64)
    # Corners in the new grid's axis frame (rotation only).
    corners = source.edge_corners_lps() @ direction
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    size = np.maximum(np.ceil((hi - lo) / spacing - 1e-6).astype(int), 1)
    # Centre the sampled box on the source box so rounding splits evenly at both ends.
    start = (lo + hi) / 2 - size * spacing / 2 + spacing / 2
    origin = direction @ start
    return Grid.from_parts((size[2], size[1], size[0]), origin=origin, spacing=spacing, direction=direction)


def crop_grid(grid: Grid, lo_zyx: tuple[int, int, int], hi_zyx: tuple[int, int, int]) -> Grid:
    """The sub-grid ``[lo, hi)`` (array order Z, Y, X) of ``grid``, same spacing and direction."""
    lo = np.array(lo_zyx[::-1], dtype=np.float64)  # (i, j, k)
    origin = grid.index_to_lps(lo)[0]
    shape = tuple(int(h - l) for l, h in zip(lo_zyx, hi_zyx))
    return Grid.from_parts(shape, origin=origin, spacing=grid.spacing, direction=grid.direction)
