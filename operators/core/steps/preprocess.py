"""From channel volumes on the reference grid to the network's input on the model grid, and back.

Training (``training.data``) and the app call the same two functions, so what the network saw in training is what
it sees in the clinic; every number comes from the model's :class:`~operators.core.model.schema.Preprocessing`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from operators.core.errors import GeometryError
from operators.core.geometry import Grid, Volume, covering_grid, resample
from operators.core.model.schema import Preprocessing
from operators.core.steps.intensity import normalise

logger = logging.getLogger(__name__)

#: The reference series must cover, along each of its three axes, at least this fraction of the model patch's
#: shortest edge (``patch_size * spacing_mm``, mm). A series covering less is a partial acquisition or a few slices
#: through the head: most of every sliding-window patch would be padding, unlike anything the model saw in training,
#: and a tumour could lie largely outside it. The only size rule of the app; the numbers come from the model.
MIN_PATCH_FRACTION = 0.5
_AXES = ("row direction (Columns x PixelSpacing[1])", "column direction (Rows x PixelSpacing[0])",
         "slice normal (slices x spacing of ImagePositionPatient (0020,0032))")


def check_extent(reference: Grid, pre: Preprocessing, *, name: str = "reference") -> None:
    """Refuse a reference grid too small for the model (rule: :data:`MIN_PATCH_FRACTION`).

    The extent along an axis is the number of voxels times the spacing (edge to edge), so a stack of ``n`` slices
    ``s`` mm apart covers ``n * s`` mm.

    Raises:
        GeometryError: naming the axis, the extent found (voxels x spacing) and the extent needed.
    """
    z, y, x = reference.shape
    counts = (x, y, z)
    extent = np.asarray(counts, dtype=np.float64) * reference.spacing
    patch_mm = np.asarray(pre.patch_size[::-1], dtype=np.float64) * np.asarray(pre.spacing_mm, dtype=np.float64)
    needed = MIN_PATCH_FRACTION * float(np.min(patch_mm))
    short = [a for a in range(3) if extent[a] < needed]
    if short:
        a = short[-1]  # the slice axis first: it is the one a partial acquisition shortens
        raise GeometryError(
            f"{name} series is too small for the model: it covers {extent[a]:.1f} mm along its {_AXES[a]} "
            f"({counts[a]} x {reference.spacing[a]:.3f} mm); the model needs at least {needed:.1f} mm on every axis "
            f"({MIN_PATCH_FRACTION:g} of its shortest patch edge, {np.min(patch_mm):.1f} mm = preprocessing.patch_size "
            f"x spacing_mm in the model metadata)"
        )


#: Voxels of model grid kept around the image content when cropping (training crops cases the same way).
CONTENT_MARGIN = 4


def content_box(image: np.ndarray, outside: float, *, margin: int = CONTENT_MARGIN) -> tuple[slice, slice, slice]:
    """Slices ``(Z, Y, X)`` of the box around the voxels of a ``(C, Z, Y, X)`` image that differ from ``outside``
    in any channel, plus ``margin``; the whole image when nothing differs.

    The network only ever saw such boxes in training: windows of pure background normalise (GroupNorm) to noise
    and give false positives, so inference runs on this box too.
    """
    nz = np.argwhere(np.any(image != outside, axis=0))
    if nz.size == 0:
        return tuple(slice(0, n) for n in image.shape[1:])  # type: ignore[return-value]
    lo = np.maximum(nz.min(axis=0) - margin, 0)
    hi = np.minimum(nz.max(axis=0) + 1 + margin, image.shape[1:])
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))  # type: ignore[return-value]


def model_grid_for(reference: Grid, pre: Preprocessing) -> Grid:
    """The model grid over a reference grid: model spacing and orientation, covering the reference's extent."""
    return covering_grid(reference, spacing=np.asarray(pre.spacing_mm), orientation=pre.orientation)


def check_same_frame(channels: Sequence[Volume], names: Sequence[str]) -> None:
    """All channels must share the reference's FrameOfReferenceUID (0020,0052); else GeometryError."""
    ref = channels[0].frame_of_reference_uid
    for vol, name in zip(channels[1:], names[1:]):
        if vol.frame_of_reference_uid != ref:
            raise GeometryError(
                f"{name} series: FrameOfReferenceUID (0020,0052) is {vol.frame_of_reference_uid}, expected "
                f"{ref} (the {names[0]} reference series); series in another frame of reference are not registered "
                "to the reference and cannot be combined"
            )


def align_to_reference(channels: Sequence[Volume], names: Sequence[str]) -> list[Volume]:
    """Put every channel on the first channel's (the reference series') grid.

    Channels already on that grid (registered series usually are) are passed through untouched, so no needless
    interpolation happens; others are resampled linearly. All must share the reference's frame of reference.
    """
    check_same_frame(channels, names)
    ref = channels[0].grid
    out = [channels[0]]
    for vol, name in zip(channels[1:], names[1:]):
        if vol.grid.same_as(ref):
            out.append(vol)
        else:
            logger.info("%s: resampled onto the reference grid (%s)", name, ref.describe())
            out.append(resample(vol, ref, interpolation="linear"))
    return out


def to_model_input(
    channels: Sequence[Volume],
    pre: Preprocessing,
    *,
    names: Sequence[str] | None = None,
    brain_mask: Volume | None = None,
) -> tuple[np.ndarray, Grid]:
    """Resample and normalise the channels onto the model grid.

    Args:
        channels: one volume per model channel, in ``pre.channels`` order; the first is the reference. Each is
            resampled from its own grid, so channels need not share the reference grid, only its frame of reference.
        pre: the model's preprocessing settings.
        names: channel names for error messages (default ``pre.channels``).
        brain_mask: bool mask on any grid in the same frame, needed when normalisation region is ``"mask"``.

    Returns:
        ``(C, Z, Y, X)`` float32 network input and the model grid it lies on.

    Raises:
        GeometryError: channels in different frames of reference, or a reference too small (:func:`check_extent`).
    """
    names = tuple(names or pre.channels)
    if len(channels) != len(pre.channels):
        raise GeometryError(f"model expects {len(pre.channels)} channels {pre.channels}, got {len(channels)}")
    check_same_frame(channels, names)
    check_extent(channels[0].grid, pre, name=names[0])
    grid = model_grid_for(channels[0].grid, pre)
    mask = None
    if pre.normalisation.region == "mask":
        if brain_mask is None:
            raise GeometryError("model normalises inside a brain mask but no brain mask was given")
        mask = resample(brain_mask.with_array(brain_mask.array.astype(np.float32)), grid).array > 0.5
    out = np.empty((len(channels), *grid.shape), dtype=np.float32)
    for c, vol in enumerate(channels):
        out[c] = normalise(resample(vol, grid, interpolation="linear").array, pre.normalisation, mask=mask)
    logger.debug("model grid %s", grid.describe())
    return out, grid


def to_reference(probabilities: np.ndarray, model_grid: Grid, reference: Grid) -> np.ndarray:
    """Resample ``(L, Z, Y, X)`` probabilities from the model grid back onto the reference grid (linear).

    Returns:
        ``(L, Z', Y', X')`` float32 on ``reference``.
    """
    return np.stack(
        [resample(Volume(array=p, grid=model_grid), reference, interpolation="linear").array for p in probabilities]
    )
