"""Brain extraction with the brain model bundle, on the reference series' grid.

The GTV model was trained on skull-stripped images (BraTS); clinical MR holds skull, scalp, fat and enhancing dura
that look like tumour rim to it. The brain mask restricts intensity normalisation (the GTV model sees a
skull-stripped image, as in training) and the GTV output (nothing outside the brain).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from operators.core.contour import contour
from operators.core.geometry import Volume
from operators.core.model_spec import ModelSpec
from operators.core.predictor import Predictor

logger = logging.getLogger(__name__)


def extract_brain(reference: Volume, spec: ModelSpec, predictor: Predictor) -> Volume:
    """``(Z, Y, X)`` bool brain mask on ``reference``'s grid: the model's mask, largest component, holes filled.

    Args:
        reference: the reference series (the brain model's one channel, e.g. T1 post-contrast).
        spec, predictor: the brain-extraction bundle and its back end.
    """
    mask = contour([reference], spec, predictor)[0].mask.array
    if mask.any():
        labels, n = ndimage.label(mask)
        if n > 1:
            sizes = np.bincount(labels.ravel())[1:]
            mask = labels == (int(np.argmax(sizes)) + 1)
        # fill holes slice by slice as well: a tumour cavity open to the surface in 3-D is closed in-plane
        mask = ndimage.binary_fill_holes(mask)
        mask = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    volume_cm3 = mask.sum() * reference.grid.voxel_volume_mm3 / 1000
    logger.info("brain mask: %.0f cm3", volume_cm3)
    return reference.with_array(mask)
