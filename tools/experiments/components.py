"""Experiment, not part of the app: the parts of the GTV model's thresholded output before the size rules.

For every case, the connected components of (probability > threshold) inside the brain region, as the app's
post-processing sees them before it drops small ones: volume, fraction of the largest, confident core (volume above
``postprocessing.core_threshold``), distance to the largest part, and whether the part touches the reference. This
is the listing the GTV model's ``keep_core_mm3`` rule was chosen from (the model report says how).

    python -m tools.experiments.components --models models --data ../shared/data/brats2018 \
        --split training/splits/brats2018_34.json --subset train [--tcia ../shared/data/tcia-brain-tumor-progression] \
        [--out F.json] [--figure CASE PNG]

BraTS cases use their own skull stripping as the brain (what the app's brain step keeps on such input); TCIA
studies go through the app's input steps and deepbet. ``--figure`` draws one BraTS case's final GTV (red) and
reference (green) on the slices through every part of the GTV, on T1c (the PNG named) and on every other input
(the same name with ``_flair`` etc. added).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from operators.core.case import BrainMask
from operators.core.model.spec import find_model
from operators.core.pipeline import segment
from operators.core.writers.report import render_png
from training.brats import (
    TUMOUR_CORE_LABELS,
    find_cases,
    load_split,
    read_tumour_core,
    read_volume,
    skull_stripped_brain_mask,
)
from training.evaluate import make_predictor


def parts(probability: np.ndarray, region: np.ndarray, reference: np.ndarray, spacing_zyx, *, threshold: float,
          core_threshold: float) -> list[dict]:
    """One row per connected part (26-connectivity) of ``probability > threshold`` inside ``region``, largest first."""
    mask = (probability > threshold) & region
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return []
    cm3 = float(np.prod(spacing_zyx)) / 1000
    sizes = np.bincount(labels.ravel())[1:] * cm3
    largest = labels == (int(np.argmax(sizes)) + 1)
    from_largest = ndimage.distance_transform_edt(~largest, sampling=spacing_zyx)
    rows = []
    for i in np.argsort(sizes)[::-1] + 1:
        part = labels == i
        rows.append({"cm3": round(float(sizes[i - 1]), 3),
                     "fraction_of_largest": round(float(sizes[i - 1] / sizes.max()), 3),
                     "core_cm3": round(float((probability[part] > core_threshold).sum() * cm3), 3),
                     "max_probability": round(float(probability[part].max()), 3),
                     "mm_from_largest": round(float(from_largest[part].min()), 1),
                     "on_reference": bool((part & reference).any())})
    return rows


def brats_parts(spec, predictor, case) -> tuple[list[dict], object, np.ndarray]:
    channels = [read_volume(p) for p in case.channel_paths]
    brain = BrainMask.without_margin(skull_stripped_brain_mask(channels))
    result = segment(channels, spec, predictor, brain_mask=brain)
    reference = read_tumour_core(case, TUMOUR_CORE_LABELS).array
    post = spec.postprocessing
    rows = parts(result.probabilities[0], brain.region.array, reference, result.channels[0].grid.spacing_zyx,
                 threshold=post.threshold, core_threshold=post.core_threshold)
    return rows, result, reference


def tcia_parts(models: Path, tcia: Path) -> dict[str, list[dict]]:
    from operators.core.model.predictor import load_models
    from operators.core.selection.rules import load_rules
    from training.dicom_eval import APP_RULES, find_studies, load_study, reference_mask

    spec, predictor, brain_model = load_models(models, device="cpu")
    rules = load_rules(APP_RULES)
    out = {}
    for folder in find_studies(tcia):
        study, volumes, headers = load_study(folder, spec.preprocessing.channels, rules)
        result = segment(volumes, spec, predictor, brain_model=brain_model, headers=headers)
        post = spec.postprocessing
        out[str(folder.relative_to(tcia))] = parts(
            result.probabilities[0], result.brain.region.array, reference_mask(study).array,
            result.channels[0].grid.spacing_zyx, threshold=post.threshold, core_threshold=post.core_threshold)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--subset", default="validation", help="train or validation (a key of the split file)")
    ap.add_argument("--tcia", type=Path, help="also list the parts on these DICOM studies")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--figure", nargs=2, metavar=("CASE", "PNG"))
    args = ap.parse_args(argv)
    spec = find_model(args.models)
    predictor = make_predictor(spec, device="cpu")
    result: dict[str, list[dict]] = {}
    for case in find_cases(args.data, spec.preprocessing.channels, case_ids=load_split(args.split)[args.subset]):
        result[case.case_id], segmented, reference = brats_parts(spec, predictor, case)
        if args.figure and case.case_id == args.figure[0]:
            png = Path(args.figure[1])
            for i, (name, image) in enumerate(zip(spec.preprocessing.channels, segmented.channels)):
                out = png if i == 0 else png.with_name(f"{png.stem}_{name.lower()}.png")
                render_png(out, image, image.with_array(segmented.gtv), others=[(reference, (0, 255, 0))],
                           slices_of=[segmented.gtv], window_region=image.array > 0,
                           title=f"{case.case_id} {name}, {spec.name} {spec.version}: GTV red, tumour core green")
        print(case.case_id, json.dumps(result[case.case_id]), flush=True)
    if args.tcia:
        for name, rows in tcia_parts(args.models, args.tcia).items():
            result[name] = rows
            print(name, json.dumps(rows), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
