"""What flows between the operators of the graph: typed, immutable, no Holoscan types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydicom import Dataset

from operators.core.dicom.series import SelectedSeries
from operators.core.geometry import Grid, Volume

if TYPE_CHECKING:
    from operators.core.steps.quality import Quality


@dataclass(frozen=True, eq=False)
class BrainMask:
    """The brain found on the reference grid (brain extraction), which the graph carries beside the volumes.

    Attributes:
        tissue: ``(Z, Y, X)`` bool brain on the reference grid: the normalisation region.
        region: ``tissue`` plus the safety margin: the GTV is restricted to it.
        model: identity (name, version, sha256) of the brain model that drew it; None for an image's own mask.
        skull_stripped: the input came skull-stripped, and ``tissue`` is its own non-zero region (the brain model
            found it so, see :func:`operators.core.steps.brain.extract_brain`).
    """

    tissue: Volume
    region: Volume
    model: dict | None = None
    skull_stripped: bool = False

    @classmethod
    def without_margin(cls, mask: Volume) -> BrainMask:
        """One mask in both parts (skull-stripped data, whose non-zero region is the brain)."""
        return cls(tissue=mask, region=mask)

    def cm3(self) -> tuple[float, float]:
        """Volumes of ``tissue`` and ``region`` in cm3."""
        v = self.tissue.grid.voxel_volume_mm3 / 1000
        return float(self.tissue.array.sum() * v), float(self.region.array.sum() * v)


@dataclass(frozen=True, eq=False)
class ChannelVolumes:
    """The selected series as volumes, in the model's channel order.

    Attributes:
        channels: channel names, e.g. ``("T1c", "FLAIR")``; the first is the reference series.
        volumes: one volume per channel (on the reference grid once resampled; each on its own before).
        reference_headers: headers of the reference series in slice order (``volumes[0].array[k]`` <-> ``[k]``).
        selections: why each series was chosen.
        brain_mask: the brain (tissue and region with margin) on the reference grid once brain extraction has run,
            else None.
    """

    channels: tuple[str, ...]
    volumes: tuple[Volume, ...] = field(repr=False)
    reference_headers: tuple[Dataset, ...] = field(repr=False)
    selections: tuple[SelectedSeries, ...] = field(repr=False)
    brain_mask: BrainMask | None = field(default=None, repr=False)

    @property
    def reference(self) -> Volume:
        return self.volumes[0]


@dataclass(frozen=True, eq=False)
class ModelInput:
    """Attributes:
    image: ``(C, Z, Y, X)`` float32 normalised network input on ``grid`` (the model grid).
    case: the channel volumes on the reference grid it came from.
    brain_mask: the brain on the reference grid, when the model uses one.
    """

    image: np.ndarray = field(repr=False)
    grid: Grid
    case: ChannelVolumes = field(repr=False)
    brain_mask: BrainMask | None = field(default=None, repr=False)


@dataclass(frozen=True, eq=False)
class Prediction:
    """Attributes:
    probabilities: ``(L, Z, Y, X)`` float32 per label, on ``grid`` (the model grid, or the reference grid once
        resampled back).
    """

    probabilities: np.ndarray = field(repr=False)
    grid: Grid
    source: ModelInput = field(repr=False)


@dataclass(frozen=True, eq=False)
class Contours:
    """Final masks on the reference grid, ready for the writers: one per GTV-model label, then the organs at risk
    (the brain, when a brain-extraction model ran).

    Attributes:
        models: ``{"name", "version", "sha256"}`` of the model that made each mask, same order as ``masks``.
        quality: the quality verdict of the GTV (:mod:`operators.core.steps.quality`), which every writer shows.
    """

    masks: tuple[Volume, ...] = field(repr=False)
    labels: tuple[str, ...]
    case: ChannelVolumes = field(repr=False)
    models: tuple[dict, ...] = ()
    quality: Quality | None = None

    def volumes_cm3(self) -> dict[str, float]:
        """Volume of each structure's mask (cm3, 3 decimals), by label: what the report and the picture state."""
        return {label: round(float(m.array.sum()) * m.grid.voxel_volume_mm3 / 1000.0, 3)
                for label, m in zip(self.labels, self.masks)}
