"""Source-task (hippocampus) data: synthetic images from SynthSeg label maps, and the MSD Task04 reader.

Every sample is a dict ``{"image": (1, Z, Y, X) float32 tensor in [0, 1], "label": (1, Z, Y, X) float32 tensor
in {0, 1}}`` on an axis-aligned LPS grid at the configured spacing (``SynthConfig.spacing_mm``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from torch.utils.data import Dataset

from operators.core.errors import InputDataError
from operators.core.geometry import Volume, covering_grid, crop_grid, resample, volume_from_sitk
from training.synth import SynthConfig, brain_centre_lps, generate, minmax_normalise

logger = logging.getLogger(__name__)

DEFAULT_LABEL_MAP_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "synthseg-label-maps"
# Fixed split of the 20 SynthSeg label maps, by map number (training_seg_NN): 01-16 train, 17-20 held out for
# validation. Kept here until it moves into a split file under training/splits/.
TRAIN_MAP_NUMBERS: tuple[int, ...] = tuple(range(1, 17))
VALIDATION_MAP_NUMBERS: tuple[int, ...] = tuple(range(17, 21))
_MAP_NAME = re.compile(r"^training_seg_(\d+)\.nii\.gz$")
_VALIDATION_STREAM = 7  # keeps validation seeds apart from training's (seed, epoch, idx)


def list_label_maps(root: str | Path = DEFAULT_LABEL_MAP_DIR) -> list[Path]:
    """The ``training_seg_*.nii.gz`` files under ``root``, sorted by name; InputDataError if there are none."""
    root = Path(root)
    paths = sorted(p for p in root.glob("training_seg_*.nii.gz") if _MAP_NAME.match(p.name))
    if not paths:
        raise InputDataError(f"label-map folder {root}: no training_seg_*.nii.gz files found")
    return paths


def map_number(path: str | Path) -> int:
    """``NN`` of ``training_seg_NN.nii.gz``."""
    match = _MAP_NAME.match(Path(path).name)
    if match is None:
        raise InputDataError(f"label map {path}: name does not match training_seg_NN.nii.gz")
    return int(match.group(1))


def split_label_maps(paths: Sequence[str | Path]) -> tuple[list[Path], list[Path]]:
    """``(training, validation)`` paths by :data:`TRAIN_MAP_NUMBERS` / :data:`VALIDATION_MAP_NUMBERS`."""
    train = [Path(p) for p in paths if map_number(p) in TRAIN_MAP_NUMBERS]
    validation = [Path(p) for p in paths if map_number(p) in VALIDATION_MAP_NUMBERS]
    return train, validation


@dataclass(frozen=True)
class CompactLabelMap:
    """A label map held in memory as uint8 indices, cropped to its non-background bounding box.

    Attributes:
        name: file name.
        volume: ``(Z, Y, X)`` uint8 indices into ``values``, on the cropped source grid (LPS).
        values: ``(n,)`` int16 FreeSurfer labels, ``values[0] == 0``.
        centre_lps: ``(3,)`` LPS mm centroid of the brain labels (every voxel).
    """

    name: str
    volume: Volume
    values: np.ndarray
    centre_lps: np.ndarray


def load_label_map(path: str | Path) -> CompactLabelMap:
    """Read a label map (SimpleITK, LPS) and store it compactly (about 10 MB instead of 64 MB)."""
    path = Path(path)
    try:
        volume = volume_from_sitk(sitk.ReadImage(str(path)))
    except RuntimeError as err:
        raise InputDataError(f"label map {path}: cannot be read ({err})") from err
    raw = volume.array
    labels = raw.astype(np.int32)
    if raw.dtype.kind == "f" and not np.array_equal(labels, raw):
        raise InputDataError(f"label map {path}: holds non-integer values; expected integer labels")
    if labels.min() < 0:
        raise InputDataError(f"label map {path}: holds negative labels (min {labels.min()}); expected labels >= 0")
    counts = np.bincount(labels.ravel())
    values = np.union1d([0], np.flatnonzero(counts)).astype(np.int16)
    if len(values) > 256:
        raise InputDataError(f"label map {path}: {len(values)} distinct labels; at most 256 can be stored as uint8")
    lut = np.zeros(len(counts), dtype=np.uint8)
    lut[values] = np.arange(len(values), dtype=np.uint8)
    nonzero = labels > 0
    if not nonzero.any():
        raise InputDataError(f"label map {path}: holds only background (0)")
    spans = [np.flatnonzero(nonzero.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    lo, hi = np.array([s[0] for s in spans]), np.array([s[-1] + 1 for s in spans])
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    grid = crop_grid(volume.grid, tuple(lo.tolist()), tuple(hi.tolist()))
    compact = Volume(array=np.ascontiguousarray(lut[labels[box]]), grid=grid)
    centre = brain_centre_lps(compact, label_values=values, stride=1)
    logger.info("label map %s: %d labels, cropped %s -> %s", path.name, len(values), raw.shape, compact.array.shape)
    return CompactLabelMap(name=path.name, volume=compact, values=values, centre_lps=centre)


def _sample(label_map: CompactLabelMap, config: SynthConfig, rng: np.random.Generator, target: str) -> dict:
    image, mask, _ = generate(
        label_map.volume, config=config, rng=rng, mode=target, label_values=label_map.values,
        centre_lps=label_map.centre_lps,
    )  # fmt: skip
    return {"image": torch.from_numpy(image)[None], "label": torch.from_numpy(mask.astype(np.float32))[None]}


class SynthHippocampusDataset(Dataset):
    """Synthetic images generated on the fly from label maps loaded once.

    Sample ``idx`` of epoch ``e`` uses label map ``idx % n_maps`` and the generator seeded with ``(seed, e, idx)``:
    deterministic whatever the worker or order, and new each epoch. Call :meth:`set_epoch` before each epoch (with
    DataLoader workers, keep ``persistent_workers=False`` so the workers see the new epoch).
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        config: SynthConfig,
        *,
        samples_per_epoch: int,
        seed: int,
        mode: str = "t1",
        target: str = "hippocampus",
    ) -> None:
        """
        Args:
            paths: label-map files.
            config: generator settings; ``mode`` overrides its contrast.
            samples_per_epoch: dataset length.
            seed: base seed (>= 0).
            mode: contrast, ``"t1"`` or ``"random"``.
            target: ``"hippocampus"`` or ``"brain"`` (see :func:`training.synth.generate`).
        """
        if not paths or samples_per_epoch < 1 or seed < 0:
            raise InputDataError(
                f"SynthHippocampusDataset: need label maps, samples_per_epoch >= 1 and seed >= 0; found "
                f"{len(paths)} maps, {samples_per_epoch}, {seed}"
            )
        self.config = replace(config, contrast=mode)
        self.maps = [load_label_map(p) for p in paths]
        self.samples_per_epoch = int(samples_per_epoch)
        self.seed = int(seed)
        self.target = target
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, idx: int) -> dict:
        if not 0 <= idx < self.samples_per_epoch:
            raise IndexError(f"index {idx} out of range for {self.samples_per_epoch} samples")
        rng = np.random.default_rng([self.seed, self.epoch, int(idx)])
        return _sample(self.maps[idx % len(self.maps)], self.config, rng, self.target)


def fixed_validation_set(
    paths: Sequence[str | Path],
    config: SynthConfig,
    seed: int,
    n_per_map: int,
    *,
    mode: str = "t1",
    target: str = "hippocampus",
) -> list[dict]:
    """``n_per_map`` synthetic samples per label map, generated once; the same for the same arguments.

    Samples are ordered map by map; each is seeded with ``(seed, stream, map position, n)``.
    """
    config = replace(config, contrast=mode)
    samples = []
    for m, path in enumerate(paths):
        label_map = load_label_map(path)
        for n in range(n_per_map):
            rng = np.random.default_rng([int(seed), _VALIDATION_STREAM, m, n])
            samples.append(_sample(label_map, config, rng, target))
    return samples


class MSDHippocampusDataset(Dataset):
    """Medical Segmentation Decathlon ``Task04_Hippocampus`` (``dataset.json``, ``imagesTr/``, ``labelsTr/``).

    Each case is resampled onto the axis-aligned LPS grid of ``config.spacing_mm`` that covers its extent
    (linear for the image, nearest neighbour for the labels); the target is ``label > 0`` (anterior 1 and posterior
    2 together) and the image is min-max normalised to ``[0, 1]`` like the synthetic images. Case sizes differ:
    batch with ``batch_size=1`` or pad.
    """

    def __init__(self, root: str | Path, config: SynthConfig, *, cases: Sequence[int] | None = None) -> None:
        """
        Args:
            root: the ``Task04_Hippocampus`` folder.
            config: only ``spacing_mm`` is used.
            cases: positions in ``dataset.json``'s ``training`` list; all when None.
        """
        self.root = Path(root)
        self.spacing_mm = float(config.spacing_mm)
        manifest = self.root / "dataset.json"
        if not manifest.exists():  # copies that ship only imagesTr/ and labelsTr/: pair the files by name
            meta = {"training": [{"image": f"imagesTr/{p.name}", "label": f"labelsTr/{p.name}"}
                                 for p in sorted((self.root / "labelsTr").glob("*.nii.gz"))]}
        else:
            try:
                meta = json.loads(manifest.read_text())
            except (OSError, json.JSONDecodeError) as err:
                raise InputDataError(f"MSD folder {self.root}: dataset.json cannot be read ({err})") from err
        entries = meta.get("training")
        if not isinstance(entries, list) or not entries:
            raise InputDataError(f"{manifest}: no 'training' list of image/label pairs")
        self.label_values = {int(k) for k in meta.get("labels", {"0": "", "1": "", "2": ""})}
        self.pairs: list[tuple[Path, Path]] = []
        for entry in entries:
            if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
                raise InputDataError(f"{manifest}: training entry {entry!r} lacks 'image' or 'label'")
            pair = (self.root / entry["image"], self.root / entry["label"])
            for p in pair:
                if not p.is_file():
                    raise InputDataError(f"{manifest}: file {p} listed in 'training' does not exist")
            self.pairs.append(pair)
        if cases is not None:
            self.pairs = [self.pairs[i] for i in cases]
        logger.info("MSD hippocampus %s: %d cases, resampled to %.2f mm", self.root, len(self.pairs), self.spacing_mm)

    def __len__(self) -> int:
        return len(self.pairs)

    def case_id(self, idx: int) -> str:
        return self.pairs[idx][0].name.removesuffix(".nii.gz")

    def load_case(self, idx: int) -> tuple[Volume, Volume]:
        """``(image (Z, Y, X) float32 in [0, 1], target (Z, Y, X) uint8)`` on the case's model grid."""
        image_path, label_path = self.pairs[idx]
        try:
            image = volume_from_sitk(sitk.ReadImage(str(image_path)))
            label = volume_from_sitk(sitk.ReadImage(str(label_path)))
        except RuntimeError as err:
            raise InputDataError(f"MSD case {image_path.name}: image or label cannot be read ({err})") from err
        if not image.grid.same_as(label.grid):
            raise InputDataError(
                f"MSD case {image_path.name}: label grid differs from image grid; found {label.grid.describe()}, "
                f"expected {image.grid.describe()}"
            )
        found = set(np.unique(label.array).astype(int).tolist())
        if not found <= self.label_values:
            raise InputDataError(
                f"MSD case {label_path}: label values {sorted(found)}; expected a subset of {sorted(self.label_values)}"
            )
        grid = covering_grid(image.grid, spacing=np.full(3, self.spacing_mm), orientation="LPS")
        resampled = resample(image, grid, interpolation="linear")
        target = resample(label.with_array(label.array.astype(np.uint8)), grid, interpolation="nearest")
        image_out = resampled.with_array(minmax_normalise(resampled.array))
        return image_out, target.with_array((target.array > 0).astype(np.uint8))

    def __getitem__(self, idx: int) -> dict:
        image, target = self.load_case(idx)
        return {
            "image": torch.from_numpy(image.array)[None],
            "label": torch.from_numpy(target.array.astype(np.float32))[None],
        }
