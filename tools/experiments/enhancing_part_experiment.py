"""Experiment, not part of the app: the enhancing part of the GTV against the TCIA studies' MaskTumor.

MaskTumor is enhancing tissue drawn voxel by voxel; the GTV is a solid pre-operative outline (tumour core). The
enhancing part of a GTV is its voxels brighter on T1 post-contrast than ``t`` standard deviations from the brain's
mean. ``t`` is fitted on the BraTS *training* cases (ground-truth tumour core -> enhancing tumour, label 4; the
BraTS brain is the skull-stripped non-zero region) and reported on the validation cases; the TCIA studies are only
measured, never used to choose ``t``.

With ``--t1pre SERIES_DESCRIPTION`` the studies' registered pre-contrast T1 is used as well: the enhancing part is
then the GTV voxels where T1post minus T1pre, each z-scored inside the brain, exceeds 0 (fixed before looking: more
signal after contrast than before, relative to the brain). BraTS here has no pre-contrast T1 to fit a threshold on,
so the Dice for other thresholds is printed as a curve over the same studies: tuned on them, not a valid estimate.

    python -m tools.experiments.enhancing_part_experiment --models models [--mirror xyz] [--t1pre T1pre_reg] \
        [--out F.json]

Measured (README), TCIA mean Dice for the bundled model: GTV 0.385, its T1c-bright part (t = -0.25) 0.421,
its part that enhances over T1pre 0.520.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from training.brats import TUMOUR_CORE_LABELS, find_cases, load_split, read_volume
from training.dicom_eval import APP_RULES, find_studies, segment_study
from training.train import dice

REPO = Path(__file__).resolve().parents[2]
THRESHOLDS = tuple(np.round(np.arange(-1.0, 2.01, 0.25), 2).tolist())
ENHANCING = (4, 3)  # BraTS 2018 label 4 (3 from 2021)


def zscore_inside(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` in standard deviations from its mean inside ``mask``."""
    values = image[mask].astype(np.float64)
    return ((image - values.mean()) / values.std()).astype(np.float32)


def enhancing_part(gtv: np.ndarray, t1c: np.ndarray, brain: np.ndarray, t: float) -> np.ndarray:
    """The voxels of ``gtv`` brighter than ``t`` brain standard deviations from the brain's mean T1c."""
    return gtv & (zscore_inside(t1c, brain) > t)


def brats_table(root: Path, case_ids: list[str]) -> dict[float, float]:
    """Mean enhancing-tumour Dice over ``case_ids`` of the ground-truth tumour core's enhancing part, per ``t``."""
    per_t = {t: [] for t in THRESHOLDS}
    for case in find_cases(root, ["T1c"], case_ids=case_ids):
        t1c = read_volume(case.channel_paths[0]).array
        seg = read_volume(case.seg_path).array
        core, enhancing = np.isin(seg, TUMOUR_CORE_LABELS), np.isin(seg, ENHANCING)
        for t in THRESHOLDS:
            per_t[t].append(dice(enhancing_part(core, t1c, t1c != 0, t), enhancing))
    return {t: float(np.mean(v)) for t, v in per_t.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, default=REPO / "models")
    p.add_argument("--brats", type=Path, default=REPO / "../shared/data/brats2018")
    p.add_argument("--split", type=Path, default=REPO / "training/splits/brats2018.json")
    p.add_argument("--tcia", type=Path, default=REPO / "../shared/data/tcia-brain-tumor-progression")
    p.add_argument("--mirror", default="", help="test-time mirroring axes of the GTV model (e.g. xyz), none by default")
    p.add_argument("--t1pre", help="SeriesDescription of the registered pre-contrast T1 (TCIA: T1pre_reg)")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    logging.basicConfig(level="WARNING")
    from operators.core.dicom.folder import scan_folder
    from operators.core.dicom.volume import series_to_volume
    from operators.core.model.predictor import Mirroring, load_models
    from operators.core.selection.rules import load_rules

    split = load_split(a.split)
    train, val = brats_table(a.brats, split["train"]), brats_table(a.brats, split["validation"])
    t = max(THRESHOLDS, key=lambda x: train[x])
    print(f"t fitted on {len(split['train'])} BraTS training cases: {t} (enhancing-tumour Dice {train[t]:.3f}; "
          f"validation {val[t]:.3f})")
    models, rules = load_models(a.models, device="cpu", mirror=Mirroring(a.mirror)), load_rules(APP_RULES)
    studies = {}
    for s in find_studies(a.tcia):
        seg = segment_study(s, models, rules)
        brain = seg.brain.tissue.array
        part = enhancing_part(seg.gtv, seg.t1c.array, brain, t)
        row = {"gtv_dsc": dice(seg.gtv, seg.reference), "enhancing_part_dsc": dice(part, seg.reference)}
        if a.t1pre:
            pre = [x for st in scan_folder(s) for x in st.series if x.description == a.t1pre]
            if len(pre) != 1:
                raise SystemExit(f"{s}: {len(pre)} series with SeriesDescription {a.t1pre!r}, expected 1")
            t1pre = series_to_volume(pre[0])[0]
            if not t1pre.grid.same_as(seg.t1c.grid):
                raise SystemExit(f"{s}: {a.t1pre} is not on the T1post grid")
            delta = zscore_inside(seg.t1c.array, brain) - zscore_inside(t1pre.array, brain)
            row["delta_t1_part_dsc"] = dice(seg.gtv & (delta > 0), seg.reference)
            row["delta_t1_curve_tuned_on_these_studies"] = {
                d: dice(seg.gtv & (delta > d), seg.reference) for d in (0.25, 0.5, 0.75, 1.0)}
        studies[str(s.relative_to(a.tcia))] = row
        print(s.relative_to(a.tcia), json.dumps(row, default=lambda v: round(v, 3)))
    keys = ("gtv_dsc", "enhancing_part_dsc") + (("delta_t1_part_dsc",) if a.t1pre else ())
    mean = {k: float(np.mean([v[k] for v in studies.values()])) for k in keys}
    print("TCIA mean", {k: round(v, 3) for k, v in mean.items()})
    if a.out:
        a.out.write_text(json.dumps({"models": str(a.models), "mirror": a.mirror, "t": t, "brats_train": train,
                                     "brats_validation": val, "tcia": studies, "tcia_mean": mean}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
