"""Post-processing of a thresholded mask on the reference grid."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from operators.core.geometry import Volume
from operators.core.model.schema import Postprocessing

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostprocessResult:
    """Attributes:
    mask: ``(Z, Y, X)`` bool on the input's grid.
    removed_components: number of components dropped as smaller than the minimum volume.
    removed_mm3: their total volume.
    kept_components: components under the fraction limit kept for their confident core (``keep_core_mm3``).
    filled_mm3: volume added by hole filling.
    """

    mask: Volume
    removed_components: int
    removed_mm3: float
    filled_mm3: float
    kept_components: int = 0


def grow(mask: np.ndarray, mm: float, spacing_zyx) -> np.ndarray:
    """Every voxel within ``mm`` (physical distance, spacing per array axis) of ``mask``."""
    if not mask.any():
        return mask
    return ndimage.distance_transform_edt(~mask, sampling=spacing_zyx) <= mm


def postprocess(probability: Volume, spec: Postprocessing, *, within: np.ndarray | None = None) -> PostprocessResult:
    """Threshold, drop small connected components (26-connectivity) unless their confident core is large, fill
    enclosed holes, dilate.

    Args:
        probability: ``(Z, Y, X)`` float probabilities.
        spec: threshold, minimum component volume (mm3) and hole filling, from the model metadata.
        within: optional ``(Z, Y, X)`` bool region (the brain mask); foreground outside it is removed first.
    """
    mask = probability.array > spec.threshold
    if within is not None:
        mask &= within
    voxel_mm3 = probability.grid.voxel_volume_mm3
    removed = kept = 0
    removed_mm3 = 0.0
    if (spec.min_component_mm3 > 0 or spec.min_component_fraction > 0) and mask.any():
        labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
        sizes = np.bincount(labels.ravel())[1:] * voxel_mm3
        limit = max(spec.min_component_mm3, spec.min_component_fraction * sizes.max())
        drop = sizes < limit
        if spec.keep_core_mm3 > 0:
            confident = (probability.array > spec.core_threshold) & mask
            cores = np.bincount(labels.ravel(), weights=confident.ravel(), minlength=n + 1)[1:] * voxel_mm3
            sure = drop & (sizes >= spec.min_component_mm3) & (cores >= spec.keep_core_mm3)
            kept = int(sure.sum())
            if kept:
                logger.info("kept %d component(s) under %.0f mm3 with a core of at least %.0f mm3 above %.2f",
                            kept, limit, spec.keep_core_mm3, spec.core_threshold)
            drop &= ~sure
        small = np.flatnonzero(drop) + 1
        if small.size:
            mask[np.isin(labels, small)] = False
            removed = int(small.size)
            removed_mm3 = float(sizes[small - 1].sum())
            logger.info("dropped %d component(s) under %.0f mm3 (%.0f mm3 in all)", removed, limit, removed_mm3)
    filled_mm3 = 0.0
    if spec.fill_holes and mask.any():
        filled = ndimage.binary_fill_holes(mask)
        filled_mm3 = float((filled & ~mask).sum() * voxel_mm3)
        mask = filled
    if spec.dilate_mm > 0:
        mask = grow(mask, spec.dilate_mm, probability.grid.spacing_zyx)
    return PostprocessResult(
        mask=probability.with_array(mask), removed_components=removed, removed_mm3=removed_mm3, filled_mm3=filled_mm3,
        kept_components=kept,
    )
