"""The model's whole path from channel volumes to a final mask, in one call.

The app's graph runs these same steps as separate operators (so each stage is timed and replaceable); training's
``evaluate`` and the tests call :func:`contour` so that they measure exactly what the app does.
"""

from __future__ import annotations

from collections.abc import Sequence

from operators.core.geometry import Volume
from operators.core.model_spec import ModelSpec
from operators.core.postprocess import PostprocessResult, postprocess
from operators.core.predictor import Predictor
from operators.core.preprocess import align_to_reference, to_model_input, to_reference


def contour(channels: Sequence[Volume], spec: ModelSpec, predictor: Predictor, *,
            brain_mask: Volume | None = None) -> list[PostprocessResult]:
    """Segment one case.

    Args:
        channels: one volume per model channel (``spec.preprocessing.channels`` order); the first is the reference.
        brain_mask: bool mask on the reference grid when the model uses one.

    Returns:
        One post-processed mask per model label, on the reference grid.
    """
    names = spec.preprocessing.channels
    aligned = align_to_reference(channels, names)
    image, grid = to_model_input(aligned, spec.preprocessing, names=names, brain_mask=brain_mask)
    probs = to_reference(predictor.predict(image), grid, aligned[0].grid)
    within = brain_mask.array if brain_mask is not None else None
    return [postprocess(aligned[0].with_array(p), spec.postprocessing, within=within) for p in probs]
