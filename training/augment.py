"""Patch sampling and augmentation (MONAI dictionary transforms), deterministic per (seed, epoch, index).

Augmentations cover what clinical MR does to a model trained on BraTS: left-right flips, small rotations and
scalings, contrast and gain changes, bias fields, noise, and thick slices with gaps (5 mm slices at 6.5 mm are
common before surgery). Channel dropout blanks one sequence at a time, so that no input is relied on alone.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.transforms import (
    Compose,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    RandBiasFieldd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandGaussianNoised,
    Randomizable,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SpatialPadd,
)
from scipy import ndimage

from training.config import AugmentConfig

KEYS = ("image", "label")
#: the spatial transforms also move the auxiliary targets of region-based training, where a sample has them
SPATIAL_KEYS = (*KEYS, "aux")


class RandThickSliced(Randomizable, MapTransform):
    """Simulate thick slices along a random axis: average over the slab thickness, sample every slab, re-interpolate.

    Args:
        keys: image keys (channel-first ``(C, Z, Y, X)``).
        prob: probability per sample.
        thickness_mm: range of simulated slice spacing in mm.
        spacing_mm: voxel spacing of the input (isotropic model grid).
    """

    def __init__(self, keys, *, prob: float, thickness_mm: tuple[float, float], spacing_mm: float) -> None:
        MapTransform.__init__(self, keys)
        self.prob = prob
        self.thickness_mm = thickness_mm
        self.spacing_mm = spacing_mm
        self._do = False
        self._axis = 0
        self._factor = 1.0

    def randomize(self, data=None) -> None:
        self._do = self.R.rand() < self.prob
        self._axis = int(self.R.randint(0, 3))
        self._factor = float(self.R.uniform(*self.thickness_mm)) / self.spacing_mm

    def __call__(self, data):
        self.randomize()
        if not self._do or self._factor <= 1.0:
            return data
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            arr = img.numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
            ax = self._axis + 1  # skip the channel axis
            n = arr.shape[ax]
            slab = ndimage.uniform_filter1d(arr, size=max(int(round(self._factor * 0.75)), 1), axis=ax, mode="nearest")
            keep = np.arange(0, n, self._factor)
            coords = np.arange(n)
            # Linear interpolation between the kept slab centres, back onto every voxel.
            idx = np.clip(np.searchsorted(keep, coords) - 1, 0, max(len(keep) - 2, 0))
            lo = keep[idx]
            hi = keep[np.minimum(idx + 1, len(keep) - 1)]
            w = np.where(hi > lo, (coords - lo) / np.maximum(hi - lo, 1e-6), 0.0).clip(0, 1)
            lo_vals = np.take(slab, np.round(lo).astype(int).clip(0, n - 1), axis=ax)
            hi_vals = np.take(slab, np.round(hi).astype(int).clip(0, n - 1), axis=ax)
            shape = [1] * arr.ndim
            shape[ax] = n
            out = lo_vals * (1 - w.reshape(shape)) + hi_vals * w.reshape(shape)
            d[key] = torch.as_tensor(out.astype(np.float32))
        return d


class RandChannelDropoutd(Randomizable, MapTransform):
    """With probability ``prob``, set one channel, drawn uniformly, of a multi-channel image to 0.

    A single-channel image is left as it is: blanking its only input teaches nothing.
    """

    def __init__(self, keys, *, prob: float) -> None:
        MapTransform.__init__(self, keys)
        self.prob = prob
        self._channel = -1

    def randomize(self, data=None) -> None:
        self._channel = int(self.R.randint(0, 1 << 16)) if self.R.rand() < self.prob else -1

    def __call__(self, data):
        self.randomize()
        if self._channel < 0:
            return data
        d = dict(data)
        for key in self.key_iterator(d):
            img = torch.as_tensor(d[key])
            if img.shape[0] < 2:
                continue
            img = img.clone()
            img[self._channel % img.shape[0]] = 0
            d[key] = img
        return d


def training_transforms(cfg: AugmentConfig, *, patch_size: tuple[int, int, int], spacing_mm: float) -> Compose:
    """Pad, crop a patch (2 of 3 centred on foreground), then augment. Input: ``image (C,Z,Y,X)``,
    ``label (1,Z,Y,X)`` tensors, and optionally ``aux (A,Z,Y,X)`` auxiliary targets moved with ``label``."""
    rot = np.deg2rad(cfg.rotate_deg)
    # array axes (Z, Y, X) are superior-inferior, anterior-posterior, left-right on the LPS model grid. The other
    # axes' flips are only added when asked for, so that the random draws of every recipe without them are unchanged.
    other_flips = [RandFlipd(SPATIAL_KEYS, prob=cfg.flip_other, spatial_axis=axis, allow_missing_keys=True)
                   for axis in (1, 0)] if cfg.flip_other > 0 else []
    return Compose(
        [
            SpatialPadd(SPATIAL_KEYS, spatial_size=patch_size, allow_missing_keys=True),
            RandCropByPosNegLabeld(SPATIAL_KEYS, label_key="label", spatial_size=patch_size, pos=2, neg=1,
                                   num_samples=1, allow_missing_keys=True),
            RandFlipd(SPATIAL_KEYS, prob=cfg.flip_lr, spatial_axis=2, allow_missing_keys=True),
            *other_flips,
            RandAffined(
                SPATIAL_KEYS,
                prob=cfg.affine_prob,
                rotate_range=(rot, rot, rot),
                scale_range=(cfg.scale, cfg.scale, cfg.scale),
                mode=("bilinear", "nearest", "nearest"),
                padding_mode="zeros",
                allow_missing_keys=True,
            ),
            RandThickSliced(["image"], prob=cfg.thick_slice_prob, thickness_mm=cfg.thick_slice_mm,
                            spacing_mm=spacing_mm),
            RandBiasFieldd(["image"], prob=cfg.bias_field_prob, coeff_range=(0.0, 0.3)),
            RandScaleIntensityd(["image"], factors=0.15, prob=cfg.intensity_prob),
            RandShiftIntensityd(["image"], offsets=0.15, prob=cfg.intensity_prob),
            RandAdjustContrastd(["image"], gamma=(0.75, 1.4), prob=cfg.intensity_prob * 0.5),
            RandGaussianNoised(["image"], prob=cfg.noise_prob, std=0.1),
            RandChannelDropoutd(["image"], prob=cfg.channel_dropout),
        ]
    )


def sample_seed(seed: int, epoch: int, index: int, rank: int = 0) -> int:
    """A 32-bit seed for one sample, distinct for every (seed, epoch, index, rank)."""
    return int(np.random.SeedSequence([seed, epoch, index, rank]).generate_state(1)[0])
