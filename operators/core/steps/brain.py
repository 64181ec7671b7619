"""Brain extraction with the brain model bundle, on the reference series' grid.

The GTV model was trained on skull-stripped images (BraTS); clinical MR holds skull, scalp, fat and enhancing dura
that look like tumour rim to it. The brain model's mask plays two parts, kept apart in :class:`BrainMask`:

* ``tissue``, the mask as the model draws it, is where intensities are normalised and outside which the GTV model
  sees zeros, as BraTS's skull stripping is in training;
* ``region``, the tissue grown by the model's safety margin (its ``postprocessing.dilate_mm``), is where a GTV may
  lie: tumour at the brain surface is not cut, and nothing in the scalp survives.

Normalising inside ``region`` instead let the margin's dura and bone into the z-score and the network input
(measured: mean Dice against the TCIA MaskTumor 0.354 with it, against 0.385 without; see docs/accuracy.md).

Input that arrives skull-stripped (research pipelines hand over such images) already carries the brain someone
accepted: its non-zero region. A brain model drawn on it can only cut that brain (deepbet left out 60-105 cm3 of
some BraTS brains written as 5 mm slices). When the shell 5-15 mm outside the model's brain is almost all exactly 0,
where a real head has skull and scalp, the input's own non-zero region is taken as the brain instead (the brain
model's ``postprocessing.stripped_input_zero_fraction``).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from operators.core.case import BrainMask
from operators.core.geometry import Volume
from operators.core.model.spec import ModelSpec
from operators.core.steps.contour import probabilities
from operators.core.steps.postprocess import grow

logger = logging.getLogger(__name__)

__all__ = ["BrainMask", "brain_probability", "extract_brain", "outer_shell_zero_fraction"]

#: the shell outside the brain model's mask where a real head has skull and scalp (mm from the mask)
SHELL_MM = (5.0, 15.0)


def brain_probability(reference: Volume, spec: ModelSpec, predictor) -> np.ndarray:
    """The brain model's probability on ``reference``'s grid: deepbet's own resampling, or the SegResNet bundle's
    model grid and sliding window (:func:`operators.core.steps.contour.probabilities`)."""
    if spec.backend == "deepbet":
        return predictor.probability(reference).array
    return probabilities([reference], spec, predictor)[0]


def extract_brain(reference: Volume, spec: ModelSpec, predictor) -> BrainMask:
    """The brain of ``reference`` as the brain bundle's metadata says: its probability above
    ``postprocessing.threshold``, the largest component (``largest_component``), holes filled in 3-D
    (``fill_holes``) and slice by slice (``fill_holes_slicewise``); then grown by ``dilate_mm`` for the region.

    Args:
        reference: the reference series (the brain model's one channel, e.g. T1 post-contrast).
        spec, predictor: the brain-extraction bundle and its back end.
    """
    post = spec.postprocessing
    mask = clean_brain_mask(brain_probability(reference, spec, predictor) > post.threshold, post)
    stripped = False
    if mask.any() and post.stripped_input_zero_fraction > 0:
        zero = outer_shell_zero_fraction(reference, mask)
        stripped = zero >= post.stripped_input_zero_fraction
        if stripped:
            logger.info("the input is skull-stripped (%.1f %% of the shell %g-%g mm outside the %s brain is 0): its "
                        "non-zero region is the brain", 100 * zero, *SHELL_MM, spec.backend)
            mask = clean_brain_mask(reference.array != 0, post)
    region = grow(mask, post.dilate_mm, reference.grid.spacing_zyx) if post.dilate_mm > 0 else mask
    brain = BrainMask(tissue=reference.with_array(mask), region=reference.with_array(region), model=spec.identity(),
                      skull_stripped=stripped)
    logger.info("brain mask (%s): %.0f cm3 (%.0f cm3 with its %.0f mm margin)",
                "the input's own, skull-stripped" if stripped else spec.backend, *brain.cm3(), post.dilate_mm)
    return brain


def clean_brain_mask(mask: np.ndarray, post) -> np.ndarray:
    """The largest component, holes filled in 3-D and slice by slice, as the brain model's post-processing says."""
    if mask.any() and post.largest_component:
        labels, n = ndimage.label(mask)
        if n > 1:
            mask = labels == (int(np.argmax(np.bincount(labels.ravel())[1:])) + 1)
    if mask.any() and post.fill_holes:
        mask = ndimage.binary_fill_holes(mask)
    if mask.any() and post.fill_holes_slicewise:
        mask = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    return mask


def outer_shell_zero_fraction(reference: Volume, brain: np.ndarray) -> float:
    """The share of voxels exactly 0 in the shell :data:`SHELL_MM` outside ``brain`` (inside the field of view):
    near 1 on skull-stripped input, low on a real head (skull, marrow, scalp and their noise)."""
    distance = ndimage.distance_transform_edt(~brain, sampling=reference.grid.spacing_zyx)
    shell = (distance > SHELL_MM[0]) & (distance <= SHELL_MM[1])
    if not shell.any():
        return 0.0
    return float(np.count_nonzero(reference.array[shell] == 0) / np.count_nonzero(shell))
