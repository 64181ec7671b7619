"""Experiment, not part of the app: deepbet on the series' own voxels against deepbet on the app's 1 mm grid.

The app resamples the T1c series onto an axis-aligned 1 mm grid (linear), runs deepbet there and resamples its
probability back (linear) before the threshold (:class:`operators.core.model.deepbet.DeepbetPredictor`). deepbet's
authors run it on the series' own voxels: the array reordered to the closest RAS axes (no interpolation; an oblique
stack is taken as if axis-aligned), deepbet's own nearest-neighbour resizing of its bounding box to 256^3 and back
(``deepbet.bet.BrainExtraction.run``). This script compares the two ways ("1 mm" and "native") with the brain
bundle's threshold and post-processing (:func:`operators.core.steps.brain.clean_brain_mask`):

* ``--brats``: BraTS cases written as DICOM studies (:func:`training.brats_dicom.write_study`; 1 mm, 5 mm slices
  every 6 mm, oblique) and read back by the app's loader, against their non-zero (skull-stripped) brain: Dice, brain
  left out and added (cm3). The brain model's own mask, before the app's skull-stripped switch.
* ``--tcia``: real heads (DICOM studies with a MaskTumor series), against HD-BET's mask (its five-fold ensemble,
  unmirrored; :func:`training.brain_check.hdbet_mask`): Dice, share of the mask outside HD-BET's, MaskTumor inside,
  and the share of the shell 5-15 mm outside the mask that is exactly 0 (what the app's skull-stripped switch reads).

A shortcut path for the second part: the GTV is not re-run with either mask.

    python -m tools.experiments.deepbet_grid --models models --brats ../shared/data/brats2018 --cases ... \
        --tcia ../shared/data/tcia-brain-tumor-progression --out work/deepbet_grid.json

Measured with the 8 BraTS validation cases (24 volumes; 1 mm, native): mean Dice 0.9758 (min 0.9613), 0.9726 (min
0.9490); equal on the 1 mm volumes, native lower on every thick and oblique one. TCIA heads (1 mm, native): Dice
0.960 / 0.962 / 0.963, 0.962 / 0.962 / 0.964; outside HD-BET's 5.08 / 4.59 / 4.09 %, 3.97 / 4.18 / 2.70 %; MaskTumor
inside 100 / 100 / 100 %, 100 / 99.3 / 100 %. Not adopted (docs/accuracy.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from operators.core.geometry import Volume, resample
from operators.core.model.files import deepbet_weight_files
from operators.core.model.predictor import load_models
from operators.core.selection.rules import load_rules
from operators.core.steps.brain import brain_probability, clean_brain_mask, outer_shell_zero_fraction

#: LPS to RAS: the first two axes change sign.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def native_probability(reference: Volume, bet) -> np.ndarray:
    """deepbet's brain probability computed on ``reference``'s own voxels, as ``BrainExtraction.run`` does with a
    NIfTI file: the array reordered to the closest RAS axes, no resampling. ``(Z, Y, X)`` float32 on its grid."""
    import nibabel.orientations as nio
    import torch

    ijk = np.ascontiguousarray(reference.array.astype(np.float32).transpose(2, 1, 0))
    ornt = nio.io_orientation(_LPS_TO_RAS @ reference.grid.affine)
    canonical = np.ascontiguousarray(nio.apply_orientation(ijk, ornt))
    with torch.inference_mode():
        prob = np.asarray(bet.run_model(canonical), dtype=np.float32)
    back = nio.apply_orientation(prob, nio.ornt_transform(nio.axcodes2ornt(("R", "A", "S")), ornt))
    return np.ascontiguousarray(back.transpose(2, 1, 0))


def both_masks(reference: Volume, spec, predictor, bet) -> dict[str, np.ndarray]:
    post = spec.postprocessing
    probs = {"1 mm": brain_probability(reference, spec, predictor), "native": native_probability(reference, bet)}
    return {name: clean_brain_mask(p > post.threshold, post) for name, p in probs.items()}


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.count_nonzero(a & b) / max(np.count_nonzero(a) + np.count_nonzero(b), 1))


def brats_rows(models: tuple, data: Path, cases: list[str], variants: list[str], bet) -> dict:
    from training.brats import find_cases
    from training.dicom_eval import APP_RULES, brats_read_back

    rules = load_rules(APP_RULES)
    spec, (brain_spec, brain_predictor) = models[0], models[2]
    out: dict = {}
    for case in find_cases(data, ("T1c", "FLAIR"), case_ids=cases):
        for variant in variants:
            written, _, vols, _ = brats_read_back(case, variant, spec.preprocessing.channels, rules)
            t1c = vols[0]
            if not t1c.grid.same_as(written.grid):
                written = resample(written, t1c.grid, interpolation="nearest")
            stripped = written.array > 0
            voxel_cm3 = t1c.grid.voxel_volume_mm3 / 1000
            for name, mask in both_masks(t1c, brain_spec, brain_predictor, bet).items():
                row = {"dsc": dice(mask, stripped),
                       "left_out_cm3": float(np.count_nonzero(stripped & ~mask) * voxel_cm3),
                       "added_cm3": float(np.count_nonzero(mask & ~stripped) * voxel_cm3),
                       "shell_zero_fraction": outer_shell_zero_fraction(t1c, mask)}
                out.setdefault(name, {}).setdefault(variant, {})[case.case_id] = row
                print(f"{case.case_id} {variant} {name}: Dice {row['dsc']:.4f}, left out {row['left_out_cm3']:.1f} "
                      f"cm3, added {row['added_cm3']:.1f} cm3, shell zero {100 * row['shell_zero_fraction']:.1f} %",
                      flush=True)
    return out


def tcia_rows(models: tuple, data: Path, bet) -> dict:
    from training.brain_check import compare_masks, hdbet_mask
    from training.dicom_eval import APP_RULES, find_studies, segment_study

    rules = load_rules(APP_RULES)
    brain_spec, brain_predictor = models[2]
    out: dict = {}
    for study in find_studies(data):
        name = str(study.relative_to(data))
        seg = segment_study(study, models, rules)
        reference = hdbet_mask(seg.t1c, mode="accurate")
        for way, mask in both_masks(seg.t1c, brain_spec, brain_predictor, bet).items():
            row = {k: v for k, v in compare_masks(mask, reference, seg.t1c).items() if k != "vertex_slices"}
            row["mask_tumor_inside_fraction"] = float((seg.reference & mask).sum() / max(int(seg.reference.sum()), 1))
            row["shell_zero_fraction"] = outer_shell_zero_fraction(seg.t1c, mask)
            out.setdefault(way, {})[name] = row
            print(f"{name} {way}: Dice {row['dsc']:.4f}, outside HD-BET's "
                  f"{100 * row['outside_reference_fraction']:.2f} %, HD-BET's left out "
                  f"{100 * row['reference_left_out_fraction']:.2f} %, MaskTumor inside "
                  f"{100 * row['mask_tumor_inside_fraction']:.1f} %, shell zero "
                  f"{100 * row['shell_zero_fraction']:.1f} %", flush=True)
    return out


def summary(per_variant: dict) -> dict:
    """Mean and min Dice over every case of every variant."""
    values = [row["dsc"] for cases in per_variant.values() for row in cases.values()]
    return {"n": len(values), "mean_dsc": float(np.mean(values)), "min_dsc": float(np.min(values))}


def main(argv: list[str] | None = None) -> int:
    from deepbet.bet import BrainExtraction

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", required=True, type=Path)
    p.add_argument("--brats", type=Path, help="BraTS-layout folder")
    p.add_argument("--cases", nargs="+", default=[])
    p.add_argument("--variants", nargs="+", default=["1mm", "thick", "oblique"])
    p.add_argument("--tcia", type=Path, help="folder of DICOM studies with a MaskTumor series")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args(argv)
    models = load_models(args.models, device="cpu")
    brain_spec = models[2][0]
    weights = deepbet_weight_files(brain_spec.root, brain_spec.metadata, verify=True)
    bet = BrainExtraction(no_gpu=True, model_path=str(weights["model"]), bbox_model_path=str(weights["bbox_model"]))
    result: dict = {}
    if args.brats:
        result["brats"] = brats_rows(models, args.brats, args.cases, args.variants, bet)
        result["brats_summary"] = {way: summary(v) for way, v in result["brats"].items()}
        for way, s in result["brats_summary"].items():
            print(f"BraTS as DICOM, {way}: mean Dice {s['mean_dsc']:.4f}, min {s['min_dsc']:.4f} (n = {s['n']})")
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
    if args.tcia:
        result["tcia"] = tcia_rows(models, args.tcia, bet)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
