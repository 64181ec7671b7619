"""Experiment, not part of the app: how much Dice the model grid alone costs, with a perfect network.

The training target is the reference tumour core resampled onto the model grid (linear, > 0.5: what
:func:`training.brats.prepare_case` learns from); the app maps the network's output back to the image grid
(:func:`operators.core.steps.preprocess.to_reference`, linear) and thresholds it at 0.5. A network that reproduced
its target exactly would therefore still score below 1 against the original 1 mm reference. This prints that
ceiling per case and grid, with the same geometry functions the app uses.

    python -m tools.experiments.grid_ceiling --data ../shared/data/brats2018 --split training/splits/brats2018_34.json \
        [--spacing 2.0 1.5] [--out F.json]

Measured on the 8 validation cases: 2 mm 0.805-0.967 per case (mean 0.933; the 1.8 cm3 core of CBICA_ARZ lowest),
1.5 mm 0.877-0.979 (mean 0.956), 1 mm (the reference's own grid) 1.000.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from operators.core.geometry import resample
from operators.core.model.schema import Preprocessing
from operators.core.steps.preprocess import model_grid_for, to_reference
from training.brats import TUMOUR_CORE_LABELS, find_cases, load_split, read_tumour_core
from training.train import dice


def ceiling(core, spacing_mm: float) -> float:
    """Dice of the reference core after the round trip to a ``spacing_mm`` model grid and back."""
    pre = Preprocessing(channels=("T1c",), spacing_mm=(spacing_mm,) * 3)
    grid = model_grid_for(core.grid, pre)
    target = resample(core.with_array(core.array.astype(np.float32)), grid).array > 0.5
    back = to_reference(target[None].astype(np.float32), grid, core.grid)[0] > 0.5
    return dice(back, core.array)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, type=Path, help="BraTS-layout folder")
    p.add_argument("--split", required=True, type=Path, help="split file; its validation cases are measured")
    p.add_argument("--spacing", type=float, nargs="+", default=[2.0, 1.5], help="model grid spacings in mm")
    p.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = p.parse_args(argv)
    ids = load_split(args.split)["validation"]
    rows = []
    for case in find_cases(args.data, ("T1c",), case_ids=ids):
        core = read_tumour_core(case, TUMOUR_CORE_LABELS)
        row = {"case": case.case_id, "core_cm3": float(core.array.sum() * core.grid.voxel_volume_mm3 / 1000)}
        row.update({f"{s:g} mm": ceiling(core, s) for s in args.spacing})
        rows.append(row)
        print(case.case_id, f"{row['core_cm3']:.1f} cm3", *(f"{s:g} mm {row[f'{s:g} mm']:.3f}" for s in args.spacing))
    means = {f"{s:g} mm": float(np.mean([r[f"{s:g} mm"] for r in rows])) for s in args.spacing}
    print("mean", *(f"{k} {v:.3f}" for k, v in means.items()))
    if args.out:
        args.out.write_text(json.dumps({"cases": rows, "mean": means}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
