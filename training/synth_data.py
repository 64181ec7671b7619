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

from operators.core.steps.intensity import normalise
from training.config import TrainConfig
from training.source_data import SynthHippocampusDataset, fixed_validation_set, list_label_maps, split_label_maps
from training.synth import SynthConfig

logger = logging.getLogger(__name__)

TARGETS = {"hippocampus": "hippocampus", "brain": "brain"}


FOV_PROB = 0.7


def limit_field_of_view(image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """Zero everything outside a random slab, as a clinical stack covers only part of the head.

    A 5 mm axial or oblique MR stack spans 100-160 mm; resampled onto the model grid, everything beyond it is exactly
    0 (no data). The slab's normal lies within 25 degrees of a random array axis; it keeps 45-90 % of the extent.
    ``image``, ``label``: ``(Z, Y, X)``; the label is zeroed outside too (no image, nothing to segment).
    """
    axis = np.zeros(3)
    axis[rng.integers(3)] = 1.0
    normal = axis + rng.normal(0, 0.25, 3)
    normal /= np.linalg.norm(normal)
    zz, yy, xx = np.meshgrid(*[np.arange(n) - n / 2 for n in image.shape], indexing="ij")
    proj = zz * normal[0] + yy * normal[1] + xx * normal[2]
    lo, hi = proj.min(), proj.max()
    width = rng.uniform(0.45, 0.9) * (hi - lo)
    start = rng.uniform(lo, hi - width)
    keep = (proj >= start) & (proj <= start + width)
    return np.where(keep, image, 0.0).astype(np.float32), np.where(keep, label, 0).astype(label.dtype)


class NormalisedDataset(Dataset):
    """Wraps a synthetic dataset and applies the model's intensity normalisation to each image.

    For brain extraction, a random limited field of view (:func:`limit_field_of_view`) is applied first with
    probability :data:`FOV_PROB`, seeded per (seed, epoch, index).
    """

    def __init__(self, base: SynthHippocampusDataset, config: TrainConfig) -> None:
        self.base = base
        self.norm = config.preprocessing.normalisation
        self.limit_fov = config.task == "brain"
        self.seed = config.seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        s = self.base[index]
        image, label = s["image"][0].numpy(), s["label"][0].numpy()
        if self.limit_fov:
            rng = np.random.default_rng([self.seed, self.epoch, index, 7])
            if rng.random() < FOV_PROB:
                image, label = limit_field_of_view(image, label, rng)
        image = normalise(image, self.norm)
        return {"image": torch.from_numpy(image)[None], "label": torch.from_numpy(label.astype(np.float32))[None]}


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
    norm = config.preprocessing.normalisation
    val = []
    for n, s in enumerate(fixed_validation_set(val_paths, sc, config.seed, config.data.validation_per_map,
                                               mode=sc.contrast, target=target)):
        image, label = s["image"][0].numpy(), s["label"][0].numpy().astype(np.uint8)
        if config.task == "brain" and n % 2 == 1:  # half the validation volumes with a limited field of view
            image, label = limit_field_of_view(image, label, np.random.default_rng([config.seed, n, 7]))
        val.append({"image": normalise(image, norm)[None], "label": label})
    logger.info("synthetic %s data: %d training maps, %d validation volumes from %d held-out maps", config.task,
                len(train_paths), len(val), len(val_paths))
    return NormalisedDataset(base, config), val
