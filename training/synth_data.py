"""Training and validation data for the synthetic tasks: hippocampus (source task) and brain extraction.

Synthetic images are normalised with the run's own normalisation (``preprocessing.normalisation``, the same
function the target task and the app use), so a pretrained network sees inputs on the scale it will be fine-tuned
on. For the hippocampus task the images are skull-stripped like BraTS.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
from torch.utils.data import Dataset

from operators.core.intensity import normalise
from training.config import TrainConfig, preprocessing_spec
from training.source_data import SynthHippocampusDataset, fixed_validation_set, list_label_maps, split_label_maps
from training.synth import SynthConfig

logger = logging.getLogger(__name__)

TARGETS = {"hippocampus": "hippocampus", "brain": "brain"}


class NormalisedDataset(Dataset):
    """Wraps a synthetic dataset and applies the model's intensity normalisation to each image."""

    def __init__(self, base: SynthHippocampusDataset, config: TrainConfig) -> None:
        self.base = base
        self.norm = preprocessing_spec(config.preprocessing).normalisation

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        s = self.base[index]
        image = normalise(s["image"][0].numpy(), self.norm)
        return {"image": torch.from_numpy(image)[None], "label": s["label"]}


def synth_config(config: TrainConfig) -> SynthConfig:
    """Generator settings for a synthetic task: model spacing, the configured shape, skull-stripped for hippocampus."""
    base = SynthConfig.whole_head() if config.task == "brain" else SynthConfig()
    return dataclasses.replace(
        base,
        spacing_mm=float(config.preprocessing.spacing_mm[0]),
        shape=tuple(config.data.synth_shape),
        contrast=config.data.synth_mode,
        skull_strip=config.task == "hippocampus",
    )


def synth_datasets(config: TrainConfig, *, rank: int = 0, world: int = 1) -> tuple[Dataset, list[dict]]:
    """(training dataset for this rank, fixed validation cases on held-out label maps)."""
    paths = list_label_maps(config.data.root)
    train_paths, val_paths = split_label_maps(paths)
    sc = synth_config(config)
    target = TARGETS[config.task]
    base = SynthHippocampusDataset(train_paths, sc, samples_per_epoch=max(config.data.samples_per_epoch // world, 1),
                                   seed=config.seed * 1000 + rank, mode=sc.contrast, target=target)
    norm = preprocessing_spec(config.preprocessing).normalisation
    val = [
        {"image": normalise(s["image"][0].numpy(), norm)[None], "label": s["label"][0].numpy().astype(np.uint8)}
        for s in fixed_validation_set(val_paths, sc, config.seed, config.data.validation_per_map, mode=sc.contrast,
                                      target=target)
    ]
    logger.info("synthetic %s data: %d training maps, %d validation volumes from %d held-out maps", config.task,
                len(train_paths), len(val), len(val_paths))
    return NormalisedDataset(base, config), val
