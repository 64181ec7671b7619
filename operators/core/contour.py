"""The model's whole path from channel volumes to a final mask, in one call.

The app's graph runs these same steps as separate operators (so each stage is timed and replaceable); training's
``evaluate`` and the tests call :func:`contour` so that they measure exactly what the app does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from operators.core.geometry import Volume
from operators.core.model_spec import ModelSpec
from operators.core.postprocess import PostprocessResult, postprocess
from operators.core.predictor import Predictor
from operators.core.preprocess import align_to_reference, to_model_input, to_reference

if TYPE_CHECKING:
    from operators.core.brain import BrainMask


def contour(channels: Sequence[Volume], spec: ModelSpec, predictor: Predictor, *,
            brain_mask: BrainMask | None = None) -> list[PostprocessResult]:
    """Segment one case.

    Args:
        channels: one volume per model channel (``spec.preprocessing.channels`` order); the first is the reference.
        brain_mask: the brain on the reference grid when the model uses one: its tissue is the normalisation
            region, its region bounds the output.

    Returns:
        One post-processed mask per model label, on the reference grid.
    """
    names = spec.preprocessing.channels
    aligned = align_to_reference(channels, names)
    tissue = brain_mask.tissue if brain_mask is not None else None
    image, grid = to_model_input(aligned, spec.preprocessing, names=names, brain_mask=tissue)
    probs = to_reference(predictor.predict(image), grid, aligned[0].grid)
    within = brain_mask.region.array if brain_mask is not None else None
    return [postprocess(aligned[0].with_array(p), spec.postprocessing, within=within) for p in probs]
