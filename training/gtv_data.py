"""Training and validation data for the target task (BraTS tumour core on the model grid)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from training.brats import BratsCase, PreparedCase, find_cases, load_prepared, load_split
from training.config import TrainConfig

logger = logging.getLogger(__name__)


class CaseDataset(Dataset):
    """Whole prepared cases, each visited equally often; ``samples_per_epoch`` items per epoch.

    Item: ``{"image": (C, Z, Y, X) float32, "label": (1, Z, Y, X) float32}`` tensors, and with ``auxiliary`` targets
    ``"aux": (A, Z, Y, X) float32`` (cropping and augmentation happen downstream; the patch is sampled on ``label``
    alone, so auxiliary targets do not change which patches are drawn).
    """

    def __init__(self, cases: list[PreparedCase], *, samples: int, seed: int, rank: int = 0,
                 auxiliary: list[np.ndarray] | None = None) -> None:
        if not cases:
            raise ValueError("no training cases")
        if auxiliary is not None and len(auxiliary) != len(cases):
            raise ValueError(f"{len(auxiliary)} auxiliary targets for {len(cases)} cases")
        self.cases, self.samples, self.seed, self.rank = cases, samples, seed, rank
        self.auxiliary = auxiliary
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        reps = -(-self.samples // len(self.cases))
        self.order = np.concatenate([rng.permutation(len(self.cases)) for _ in range(reps)])[: self.samples]

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict:
        i = int(self.order[index])
        case = self.cases[i]
        item = {"image": torch.from_numpy(case.image), "label": torch.from_numpy(case.label[None].astype(np.float32))}
        if self.auxiliary is not None:
            item["aux"] = torch.from_numpy(self.auxiliary[i].astype(np.float32))
        return item


def auxiliary_targets(case: BratsCase, pre, cache_dir, label_sets) -> np.ndarray:
    """``(A, Z, Y, X)`` uint8: one target per BraTS label set, on the same cropped grid as the case's tumour core."""
    return np.stack([load_prepared(case, pre, cache_dir, labels).label for labels in label_sets])


def gtv_datasets(config: TrainConfig, *, rank: int = 0, world: int = 1) -> tuple[CaseDataset, list[dict]]:
    """Training dataset (this rank's share) and validation cases (``image``, ``label`` arrays on the model grid)."""
    pre = config.preprocessing
    split = load_split(config.data.split_file)
    quiet = rank != 0 or not sys.stderr.isatty()
    found = {part: find_cases(config.data.root, pre.channels, case_ids=split[part]) for part in ("train", "validation")}
    prepared = {
        part: [load_prepared(c, pre, config.data.cache_dir, config.data.brats_labels)
               for c in tqdm(cases, desc=f"preparing {part} cases", leave=False, disable=quiet)]
        for part, cases in found.items()
    }
    logger.info("GTV data: %d training, %d validation cases", len(prepared["train"]), len(prepared["validation"]))
    auxiliary = None
    if config.data.auxiliary_labels:
        auxiliary = [auxiliary_targets(c, pre, config.data.cache_dir, config.data.auxiliary_labels)
                     for c in tqdm(found["train"], desc="preparing auxiliary targets", leave=False, disable=quiet)]
        logger.info("auxiliary targets (BraTS labels) %s learnt beside the target",
                    [list(s) for s in config.data.auxiliary_labels])
    base = CaseDataset(prepared["train"], samples=max(config.data.samples_per_epoch // world, 1), seed=config.seed,
                       rank=rank, auxiliary=auxiliary)
    val = [{"image": c.image, "label": c.label} for c in prepared["validation"]]
    return base, val
