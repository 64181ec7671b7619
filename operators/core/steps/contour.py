"""A model's probabilities for aligned channel volumes, on the reference grid: model grid, normalisation inside
the brain, sliding window, back to the reference grid. :mod:`operators.core.pipeline` composes it with brain
extraction and post-processing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from operators.core.geometry import Volume
from operators.core.model.predictor import Predictor
from operators.core.model.spec import ModelSpec
from operators.core.steps.preprocess import to_model_input, to_reference

if TYPE_CHECKING:
    from operators.core.case import BrainMask


def probabilities(channels: Sequence[Volume], spec: ModelSpec, predictor: Predictor, *,
                  brain_mask: BrainMask | None = None) -> np.ndarray:
    """``(labels, Z, Y, X)`` float32 probabilities on the first channel's grid (channels already aligned)."""
    tissue = brain_mask.tissue if brain_mask is not None else None
    image, grid = to_model_input(channels, spec.preprocessing, names=spec.preprocessing.channels, brain_mask=tissue)
    return to_reference(predictor.predict(image), grid, channels[0].grid)
