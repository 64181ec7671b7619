"""``python -m training evaluate``: run an exported model on every case of a BraTS-layout folder.

For each case folder it writes ``OUT/<case>.nii.gz``, the binary GTV on the case's own grid, through the app's own
steps (:func:`operators.core.pipeline.segment`: brain extraction with the brain model the GTV model names, inference,
post-processing), and ``OUT/metrics.json`` with per-case and mean DSC, HD95 and ASD (mm, physical spacing) where a
``_seg`` exists, and the brain mask's Dice against the case's non-zero (skull-stripped) brain.

``brain="image"`` replaces brain extraction by the image's own non-zero region (BraTS is skull-stripped): a
diagnostic of the GTV model alone, not the product's figure.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from operators.core.case import BrainMask
from operators.core.geometry import volume_to_sitk
from operators.core.model.predictor import Mirroring, make_predictor
from operators.core.model.spec import find_model
from operators.core.pipeline import segment
from training.brats import TUMOUR_CORE_LABELS, find_cases, read_tumour_core, read_volume, skull_stripped_brain_mask
from training.metrics import quality_entry, segmentation_metrics, summarise
from training.train import dice

logger = logging.getLogger(__name__)


BRAIN_MODES = ("app", "image")
#: the bundles the app ships; a brain model named by a GTV bundle elsewhere (an experiment's) is looked for here too
APP_MODELS = Path(__file__).resolve().parents[1] / "models"


def find_brain_model(spec, device: str = "auto"):
    """``(spec, predictor)`` of the brain-extraction bundle ``spec`` names: beside it, else in the app's models."""
    from operators.core.errors import ModelSpecError

    name = spec.preprocessing.brain_mask_model
    try:
        brain_spec = find_model(spec.root.parent, name)
    except ModelSpecError:
        brain_spec = find_model(APP_MODELS, name)
    return brain_spec, make_predictor(brain_spec, device=device)


def evaluate(model_dir: str | Path, data_dir: str | Path, out_dir: str | Path, *, case_ids: list[str] | None = None,
             device: str = "auto", progress: bool = True, brain: str = "app", mirror: str = "") -> dict:
    """Segment every case; return (and write) the metrics dict. ``brain``: see the module docstring; ``mirror``:
    test-time mirroring axes of the GTV model (:class:`~operators.core.model.window.Mirroring`), none by default."""
    if brain not in BRAIN_MODES:
        raise ValueError(f"brain must be one of {BRAIN_MODES}, found {brain!r}")
    spec = find_model(model_dir)
    predictor = make_predictor(spec, device=device, mirror=Mirroring(mirror))
    uses_brain = bool(spec.preprocessing.brain_mask_model)
    brain_model = find_brain_model(spec, device) if uses_brain and brain == "app" else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = find_cases(data_dir, spec.preprocessing.channels, case_ids=case_ids)
    # the BraTS labels the model was trained to find (tumour core unless its training facts say otherwise)
    brats_labels = tuple(spec.metadata.get("training", {}).get("brats_labels", TUMOUR_CORE_LABELS))
    per_case = {}
    for case in tqdm(cases, desc="evaluate", disable=not progress):
        t0 = time.perf_counter()
        channels = [read_volume(p) for p in case.channel_paths]
        stripped = skull_stripped_brain_mask(channels)
        given = BrainMask.without_margin(stripped) if uses_brain and brain == "image" else None
        result = segment(channels, spec, predictor, brain_model=brain_model, brain_mask=given)
        mask = result.results[0].mask
        image = volume_to_sitk(mask.with_array(mask.array.astype(np.uint8)))
        sitk.WriteImage(image, str(out / f"{case.case_id}.nii.gz"), useCompression=True)
        entry = {"seconds": round(time.perf_counter() - t0, 2)}
        if result.brain is not None and brain == "app":
            entry["brain_dsc_vs_nonzero"] = dice(result.brain.tissue.array, stripped.array)
            entry["brain_missed_cm3"] = float((stripped.array & ~result.brain.tissue.array).sum()
                                              * stripped.grid.voxel_volume_mm3 / 1000)
        if case.seg_path is not None:
            ref = read_tumour_core(case, brats_labels)
            spacing_zyx = ref.grid.spacing_zyx
            entry.update(segmentation_metrics(mask.array, ref.array, spacing_zyx))
        logger.info("%s: %s", case.case_id, {k: round(v, 4) for k, v in entry.items()})
        entry["quality"] = quality_entry(result.quality)
        per_case[case.case_id] = entry
    scored = [v for v in per_case.values() if "dsc" in v]
    keys = ("dsc", "hd95_mm", "asd_mm") + (("brain_dsc_vs_nonzero",) if brain_model is not None else ())
    result = {
        "model": spec.identity(),
        "brain": brain if uses_brain else None,
        "data": str(data_dir),
        "cases": per_case,
        "summary": {k: summarise([v[k] for v in scored]) for k in keys} if scored else {},
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    return result
