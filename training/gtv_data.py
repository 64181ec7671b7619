"""Training and validation data for the target task (BraTS tumour core on the model grid)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from training.brats import PreparedCase, find_cases, load_prepared, load_split
from training.config import TrainConfig

logger = logging.getLogger(__name__)


class CaseDataset(Dataset):
    """Whole prepared cases, each visited equally often; ``samples_per_epoch`` items per epoch.

    Item: ``{"image": (C, Z, Y, X) float32, "label": (1, Z, Y, X) float32}`` tensors (cropping and augmentation
    happen downstream).
    """

    def __init__(self, cases: list[PreparedCase], *, samples: int, seed: int, rank: int = 0) -> None:
        if not cases:
            raise ValueError("no training cases")
        self.cases, self.samples, self.seed, self.rank = cases, samples, seed, rank
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        reps = -(-self.samples // len(self.cases))
        self.order = np.concatenate([rng.permutation(len(self.cases)) for _ in range(reps)])[: self.samples]

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict:
        case = self.cases[int(self.order[index])]
        return {"image": torch.from_numpy(case.image), "label": torch.from_numpy(case.label[None].astype(np.float32))}


def gtv_datasets(config: TrainConfig, *, rank: int = 0, world: int = 1) -> tuple[CaseDataset, list[dict]]:
    """Training dataset (this rank's share) and validation cases (``image``, ``label`` arrays on the model grid)."""
    pre = config.preprocessing
    split = load_split(config.data.split_file)
    prepared = {}
    for part in ("train", "validation"):
        cases = find_cases(config.data.root, pre.channels, case_ids=split[part])
        prepared[part] = [
            load_prepared(c, pre, config.data.cache_dir, config.data.brats_labels)
            for c in tqdm(cases, desc=f"preparing {part} cases", leave=False,
                          disable=rank != 0 or not sys.stderr.isatty())
        ]
    logger.info("GTV data: %d training, %d validation cases", len(prepared["train"]), len(prepared["validation"]))
    base = CaseDataset(prepared["train"], samples=max(config.data.samples_per_epoch // world, 1), seed=config.seed,
                       rank=rank)
    val = [{"image": c.image, "label": c.label} for c in prepared["validation"]]
    return base, val
