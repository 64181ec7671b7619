"""Training and validation data for the real source task: MSD Task04 hippocampus (T1-weighted MR crops).

The crops are small (about 35 x 50 x 35 mm). They are resampled onto the target task's grid (2 mm, LPS), so the
pretrained filters see anatomy at the physical scale they will be fine-tuned on, normalised with the run's own
normalisation, and padded with zeros (the value outside the brain in the target task) to the patch size. The case
split is fixed by position in the sorted case list: every fifth case validates, the rest train.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import Dataset

from operators.core.steps.intensity import normalise
from training.config import TrainConfig
from training.source_data import MSDHippocampusDataset
from training.synth import SynthConfig

logger = logging.getLogger(__name__)

VALIDATION_EVERY = 5


def _pad_to(array: np.ndarray, shape) -> np.ndarray:
    """Zero-pad ``(Z, Y, X)`` symmetrically up to at least ``shape``."""
    pads = [(max(s - n, 0) // 2, max(s - n, 0) - max(s - n, 0) // 2) for n, s in zip(array.shape, shape)]
    return np.pad(array, pads)


class PreloadedCases(Dataset):
    """``samples_per_epoch`` draws from cases held in memory, cycling through them in a seeded order per epoch."""

    def __init__(self, cases: list[dict], *, samples_per_epoch: int, seed: int) -> None:
        self.cases, self.samples_per_epoch, self.seed = cases, int(samples_per_epoch), int(seed)
        self.order = np.arange(len(cases))

    def set_epoch(self, epoch: int) -> None:
        self.order = np.random.default_rng([self.seed, epoch, 11]).permutation(len(self.cases))

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, idx: int) -> dict:
        c = self.cases[int(self.order[idx % len(self.cases)])]
        return {"image": torch.from_numpy(c["image"]), "label": torch.from_numpy(c["label"].astype(np.float32))[None]}


def msd_datasets(config: TrainConfig, *, rank: int = 0, world: int = 1) -> tuple[Dataset, list[dict]]:
    """(training dataset for this rank, validation cases), each case normalised and padded to the patch size."""
    pre = config.preprocessing
    source = MSDHippocampusDataset(config.data.root, SynthConfig(spacing_mm=float(pre.spacing_mm[0])))
    train, val = [], []
    for i in range(len(source)):
        image, target = source.load_case(i)
        img = _pad_to(normalise(image.array, pre.normalisation), pre.patch_size).astype(np.float32)
        lab = _pad_to(target.array, pre.patch_size).astype(np.uint8)
        (val if i % VALIDATION_EVERY == 0 else train).append({"image": img[None], "label": lab})
    logger.info("MSD hippocampus: %d training, %d validation cases on a %.1f mm grid, padded to %s", len(train),
                len(val), float(pre.spacing_mm[0]), tuple(pre.patch_size))
    base = PreloadedCases(train, samples_per_epoch=max(config.data.samples_per_epoch // world, 1),
                          seed=config.seed * 1000 + rank)
    return base, val
