"""Experiment, not part of the app: mirror test-time augmentation (TTA) for the GTV model.

Runs a ``python -m training`` command unchanged, except that the GTV network's output in every sliding window is the
mean over mirror images of the window (every subset of the chosen axes, flipped back before averaging). The
brain-extraction model is left alone: flipping its input too put both orbits inside the brain mask.

    python -m tools.experiments.tta_experiment --axes xyz [--mean prob|logit] -- evaluate \\
        --model models/glioblastoma_gtv \\
        --data ../shared/data/brats2018 --out work/tta/val --cases <validation cases>
    python -m tools.experiments.tta_experiment --axes xyz -- evaluate-dicom --models models \\
        --data ../shared/data/tcia-brain-tumor-progression --out work/tta/tcia

Measured (README): 8 flips, mean probability: BraTS validation DSC 0.706 against 0.738 without TTA, TCIA
MaskTumor Dice 0.434 against 0.385; not adopted.
"""

from __future__ import annotations

import argparse
import itertools
import sys

import operators.core.model.predictor as predictor

AXES = {"z": 2, "y": 3, "x": 4}  # dims of an (N, C, Z, Y, X) window batch


def mirrored(forward, dims: list[int], mean: str):
    """``forward`` averaged over every mirror image of its input along ``dims`` (returns logits, as it does)."""
    import torch

    flips = [s for r in range(len(dims) + 1) for s in itertools.combinations(dims, r)]

    def run(x):
        total = None
        for f in flips:
            y = forward(torch.flip(x, f) if f else x).float()
            y = torch.flip(y, f) if f else y
            y = torch.sigmoid(y) if mean == "prob" else y
            total = y if total is None else total + y
        total = total / len(flips)
        return torch.logit(total.clamp(1e-6, 1 - 1e-6)) if mean == "prob" else total

    return run


def install(dims: list[int], mean: str = "prob"):
    """Make every predictor's sliding window mirror-average the GTV model (only); returns a function that undoes it."""
    plain = predictor.sliding_window

    def sliding_window(image, spec, forward, **kw):
        if tuple(spec.labels) != ("GTV",):
            return plain(image, spec, forward, **kw)
        return plain(image, spec, mirrored(forward, dims, mean), **kw)

    predictor.sliding_window = sliding_window  # the predictors look the function up at call time

    def restore() -> None:
        predictor.sliding_window = plain

    return restore


def main() -> int:
    if "--" not in sys.argv:
        raise SystemExit("usage: tta_experiment.py --axes xyz [--mean prob|logit] -- <python -m training arguments>")
    cut = sys.argv.index("--")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--axes", required=True, help="mirror axes of the model grid, any of x, y, z (x = left-right)")
    p.add_argument("--mean", choices=("prob", "logit"), default="prob")
    a = p.parse_args(sys.argv[1:cut])
    install([AXES[c] for c in a.axes], a.mean)
    from training.cli import main as training_main

    return training_main(sys.argv[cut + 1:])


if __name__ == "__main__":
    sys.exit(main())
