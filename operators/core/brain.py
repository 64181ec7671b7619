"""Brain extraction with the brain model bundle, on the reference series' grid.

The GTV model was trained on skull-stripped images (BraTS); clinical MR holds skull, scalp, fat and enhancing dura
that look like tumour rim to it. The brain model's mask plays two parts, kept apart in :class:`BrainMask`:

* ``tissue``, the mask as the model draws it, is where intensities are normalised and outside which the GTV model
  sees zeros, as BraTS's skull stripping is in training;
* ``region``, the tissue grown by the model's safety margin (its ``postprocessing.dilate_mm``), is where a GTV may
  lie: tumour at the brain surface is not cut, and nothing in the scalp survives.

Normalising inside ``region`` instead let the margin's dura and bone into the z-score and the network input
(session 2: mean Dice against the TCIA MaskTumor 0.354 with it, see README).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from operators.core.contour import contour
from operators.core.geometry import Volume
from operators.core.model_spec import ModelSpec
from operators.core.postprocess import grow
from operators.core.predictor import Predictor

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class BrainMask:
    """Attributes:
    tissue: ``(Z, Y, X)`` bool brain on the reference grid: the normalisation region.
    region: ``tissue`` plus the safety margin: the GTV is restricted to it.
    """

    tissue: Volume
    region: Volume

    @classmethod
    def without_margin(cls, mask: Volume) -> BrainMask:
        """One mask in both parts (skull-stripped data, whose non-zero region is the brain)."""
        return cls(tissue=mask, region=mask)

    def cm3(self) -> tuple[float, float]:
        """Volumes of ``tissue`` and ``region`` in cm3."""
        v = self.tissue.grid.voxel_volume_mm3 / 1000
        return float(self.tissue.array.sum() * v), float(self.region.array.sum() * v)


def extract_brain(reference: Volume, spec: ModelSpec, predictor: Predictor) -> BrainMask:
    """The brain of ``reference``: the model's mask, largest component, holes filled; then grown by the model's
    ``postprocessing.dilate_mm`` for the region.

    Args:
        reference: the reference series (the brain model's one channel, e.g. T1 post-contrast).
        spec, predictor: the brain-extraction bundle and its back end.
    """
    margin_mm = spec.postprocessing.dilate_mm
    no_margin = dataclasses.replace(spec, postprocessing=dataclasses.replace(spec.postprocessing, dilate_mm=0.0))
    mask = contour([reference], no_margin, predictor)[0].mask.array
    if mask.any():
        labels, n = ndimage.label(mask)
        if n > 1:
            sizes = np.bincount(labels.ravel())[1:]
            mask = labels == (int(np.argmax(sizes)) + 1)
        # fill holes slice by slice as well: a tumour cavity open to the surface in 3-D is closed in-plane
        mask = ndimage.binary_fill_holes(mask)
        mask = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    region = grow(mask, margin_mm, reference.grid.spacing[::-1]) if margin_mm > 0 else mask
    brain = BrainMask(tissue=reference.with_array(mask), region=reference.with_array(region))
    logger.info("brain mask: %.0f cm3 (%.0f cm3 with its %.0f mm margin)", *brain.cm3(), margin_mm)
    return brain
