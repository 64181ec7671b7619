"""Intensity normalisation, defined once and named in the model metadata.

Training calls :func:`normalise` on every channel with the settings it writes into the model's metadata; the app
reads those settings back and calls the same function. No normalisation constant lives anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operators.core.errors import ModelSpecError

METHODS = ("zscore", "external")
REGIONS = ("nonzero", "mask")


@dataclass(frozen=True)
class Normalisation:
    """How one channel's intensities are mapped before the network sees them.

    Attributes:
        method: ``"zscore"``: subtract the mean, divide by the standard deviation of the voxels in ``region``;
            ``"external"``: the model's back end normalises its own input (deepbet: quantile clamp and z-score).
        region: ``"nonzero"`` (voxels > 0: skull-stripped data such as BraTS) or ``"mask"`` (voxels inside a
            brain mask given by the caller).
        clip: after scaling, values are clipped to ``[-clip, clip]``.
        outside: value written outside the region (the background of skull-stripped training data).
    """

    method: str = "zscore"
    region: str = "nonzero"
    clip: float = 5.0
    outside: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ModelSpecError(f"normalisation method must be one of {METHODS}, found {self.method!r}")
        if self.region not in REGIONS:
            raise ModelSpecError(f"normalisation region must be one of {REGIONS}, found {self.region!r}")

    @classmethod
    def from_dict(cls, d: dict) -> Normalisation:
        return cls(**d)

    def to_dict(self) -> dict:
        return {"method": self.method, "region": self.region, "clip": self.clip, "outside": self.outside}


def normalise(array: np.ndarray, spec: Normalisation, *, mask: np.ndarray | None = None) -> np.ndarray:
    """Normalise one channel.

    Args:
        array: ``(Z, Y, X)`` intensities, any numeric dtype.
        spec: the model's normalisation settings.
        mask: ``(Z, Y, X)`` bool, required when ``spec.region == "mask"``.

    Returns:
        ``(Z, Y, X)`` float32.
    """
    if spec.method == "external":
        raise ValueError("normalisation method 'external' belongs to the model's back end, not to normalise()")
    a = np.asarray(array, dtype=np.float32)
    if spec.region == "mask":
        if mask is None:
            raise ValueError("normalisation region 'mask' needs a mask")
        region = np.asarray(mask, dtype=bool)
    else:
        region = a > 0
    out = np.full(a.shape, spec.outside, dtype=np.float32)
    values = a[region]
    if values.size < 2:
        return out
    std = float(values.std())
    scaled = (values - float(values.mean())) / (std if std > 0 else 1.0)
    out[region] = np.clip(scaled, -spec.clip, spec.clip)
    return out
