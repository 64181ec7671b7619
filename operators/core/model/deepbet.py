"""deepbet (Fisch et al., Computers in Biology and Medicine 2024) as the brain-extraction back end.

deepbet is a U-Net brain extractor trained on about 7,800 real T1-weighted images from many scanners; its two
TorchScript weight files ship in the pinned ``deepbet`` wheel (MIT). This module puts it behind the same interface
as the project's own models: a bundle folder whose metadata names the back end and the sha256 of each weight file,
checked before the weights are loaded; nothing is fetched at run time.

deepbet works on a voxel array in RAS+ order and resizes its bounding box to 256^3 whatever the voxel size, so the
reference series is first resampled onto an axis-aligned grid of the bundle's ``preprocessing.spacing_mm``
(1 mm: what deepbet was trained on; a 5 mm oblique stack is interpolated between its slices), and deepbet's
brain probability is resampled back onto the reference grid (linear) before the threshold. Run on the series' own
voxels instead, as deepbet's own command line does, it scored lower against the non-zero brain of thick and oblique
BraTS studies and left part of a tumour out of the brain on a real 6.5 mm head (docs/accuracy.md,
tools/experiments/deepbet_grid.py).
"""

from __future__ import annotations

import logging

import numpy as np

from operators.core.errors import InputDataError
from operators.core.geometry import Volume, covering_grid, resample
from operators.core.model.files import BACKEND_DEEPBET as BACKEND
from operators.core.model.files import deepbet_weight_files
from operators.core.model.spec import ModelSpec

logger = logging.getLogger(__name__)



def _lps_zyx_to_ras_xyz(array: np.ndarray) -> np.ndarray:
    """``(Z, Y, X)`` on an LPS grid (X to the left, Y to posterior, Z up) as ``(x, y, z)`` in RAS+ voxel order."""
    return np.ascontiguousarray(array.transpose(2, 1, 0)[::-1, ::-1, :])


def _ras_xyz_to_lps_zyx(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array[::-1, ::-1, :].transpose(2, 1, 0))


class DeepbetPredictor:
    """Brain probability of a reference volume by deepbet; ``probability(volume)`` returns it on the same grid."""

    backend = BACKEND

    def __init__(self, spec: ModelSpec, *, device: str = "auto", reason: str = "the bundle's back end") -> None:
        import torch
        from deepbet.bet import BrainExtraction

        weights = deepbet_weight_files(spec.root, spec.metadata, verify=False)  # hashed when the bundle was loaded
        use_gpu = device in ("auto", "cuda") and torch.cuda.is_available()
        self.device = "cuda" if use_gpu else "cpu"
        self.reason = reason
        self.spec = spec
        self._bet = BrainExtraction(no_gpu=not use_gpu, model_path=str(weights["model"]),
                                    bbox_model_path=str(weights["bbox_model"]))

    def probability(self, reference: Volume) -> Volume:
        """deepbet's brain probability on ``reference``'s grid (float32 in [0, 1])."""
        import torch

        spacing = np.asarray(self.spec.preprocessing.spacing_mm, dtype=np.float64)
        grid = covering_grid(reference.grid, spacing=spacing, orientation="LPS")
        image = resample(reference, grid, interpolation="linear")
        x = _lps_zyx_to_ras_xyz(image.array.astype(np.float32))
        if not np.any(x > 0):
            raise InputDataError("brain extraction: the reference series holds no positive intensity (a blank "
                                 "image); no brain can be found")
        with torch.inference_mode():
            try:
                prob = self._bet.run_model(x)
            except (ValueError, AssertionError) as err:  # deepbet's bounding-box model found no head
                raise InputDataError(f"brain extraction: deepbet found no head in the reference series ({err})"
                                     ) from err
        on_grid = image.with_array(_ras_xyz_to_lps_zyx(np.asarray(prob, dtype=np.float32)))
        return resample(on_grid, reference.grid, interpolation="linear")
