"""The pipeline's steps after the volumes are built, composed once, with every intermediate result returned.

The app's graph runs the same steps as separate operators (brain extraction, resampling, inference, inverse
resampling, post-processing), so that each stage is timed and replaceable; training's ``evaluate`` and
``evaluate-dicom``, the benchmark and the tests call :func:`segment`, so that every figure they give is the
product's figure. A test checks that the graph's masks equal :func:`segment`'s on a real study.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from operators.core.case import BrainMask
from operators.core.geometry import Volume
from operators.core.model.predictor import Predictor
from operators.core.model.spec import ModelSpec
from operators.core.steps.brain import extract_brain
from operators.core.steps.contour import probabilities
from operators.core.steps.postprocess import PostprocessResult, postprocess
from operators.core.steps.preprocess import align_to_reference
from operators.core.steps.quality import Quality, assess


@dataclass(frozen=True, eq=False)
class Segmentation:
    """One case through the pipeline, on the reference grid.

    Attributes:
        channels: the channel volumes aligned to the reference (the first channel).
        brain: the brain mask (tissue and region with margin), or None for a model that uses none.
        probabilities: ``(labels, Z, Y, X)`` float32 network probabilities.
        results: one post-processed result per model label, restricted to the brain region.
        unrestricted: the first label's mask post-processed without the brain restriction (what the network put
            outside the brain, for diagnosis).
        quality: the quality verdict and its signals (:mod:`operators.core.steps.quality`).
    """

    channels: tuple[Volume, ...] = field(repr=False)
    brain: BrainMask | None = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    results: tuple[PostprocessResult, ...] = field(repr=False)
    unrestricted: np.ndarray = field(repr=False)
    quality: Quality | None = None

    @property
    def gtv(self) -> np.ndarray:
        """The first label's final mask (``(Z, Y, X)`` bool)."""
        return self.results[0].mask.array


def finish(aligned: Sequence[Volume], probs: np.ndarray, spec: ModelSpec, brain_mask: BrainMask | None, *,
           headers=None) -> tuple[tuple[PostprocessResult, ...], Quality]:
    """Post-processing of each label inside the brain region, and the quality verdict of the first label (the GTV).

    Args:
        aligned: the channel volumes on the reference grid; probs: ``(labels, Z, Y, X)`` on the same grid.
        headers: the reference series' headers (DICOM input), for the input-conformance signals.
    """
    within = brain_mask.region.array if brain_mask is not None else None
    reference = aligned[0]
    results = tuple(postprocess(reference.with_array(p), spec.postprocessing, within=within) for p in probs)
    quality = assess(aligned, spec.preprocessing.channels, results[0].mask.array, probs[0],
                     brain_mask.tissue.array if brain_mask is not None else None, spec.quality, headers=headers)
    return results, quality


def segment(channels: Sequence[Volume], spec: ModelSpec, predictor: Predictor, *,
            brain_model: tuple[ModelSpec, object] | None = None, brain_mask: BrainMask | None = None,
            headers=None) -> Segmentation:
    """Brain extraction (with ``brain_model``, or the given ``brain_mask``), inference and post-processing.

    Args:
        channels: one volume per model channel, in ``spec.preprocessing.channels`` order; the first is the reference.
        brain_model: ``(spec, predictor)`` of the brain-extraction bundle the GTV model names.
        brain_mask: a brain mask to use instead (e.g. a skull-stripped image's own non-zero region, for diagnosis).
        headers: the reference series' headers in slice order (DICOM input), for the quality signals.
    """
    aligned = tuple(align_to_reference(channels, spec.preprocessing.channels))
    if brain_mask is None and brain_model is not None and spec.preprocessing.brain_mask_model:
        brain_mask = extract_brain(aligned[0], *brain_model)
    probs = probabilities(aligned, spec, predictor, brain_mask=brain_mask)
    results, quality = finish(aligned, probs, spec, brain_mask, headers=headers)
    within = brain_mask.region.array if brain_mask is not None else None
    reference = aligned[0]
    unrestricted = (postprocess(reference.with_array(probs[0]), spec.postprocessing).mask.array
                    if within is not None else results[0].mask.array)
    return Segmentation(channels=aligned, brain=brain_mask, probabilities=probs, results=results,
                        unrestricted=unrestricted, quality=quality)
