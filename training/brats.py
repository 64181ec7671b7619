"""BraTS-layout data for the target task: glioblastoma GTV = BraTS tumour core.

Layout: ``<root>/<case>/<case>_t1ce.nii.gz``, ``_flair``, ``_t1``, ``_t2``, optionally ``_seg``. Cases are read with
SimpleITK (which returns LPS geometry) and brought onto the model grid by the *same* function the app uses
(:func:`operators.core.steps.preprocess.to_model_input`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from operators.core.errors import InputDataError
from operators.core.geometry import Grid, Volume, crop_grid, resample, volume_from_sitk
from operators.core.model.schema import Preprocessing
from operators.core.steps.preprocess import CONTENT_MARGIN, content_box, to_model_input

logger = logging.getLogger(__name__)

#: File suffix of each channel name in the BraTS layout.
BRATS_SUFFIX = {"T1c": "t1ce", "FLAIR": "flair", "T1": "t1", "T2": "t2"}
#: Tumour core: necrotic/non-enhancing core (1) and enhancing tumour (4 in BraTS 2018, renumbered 3 from 2021 on).
#: Oedema (2) is not GTV. A 2018 map has no 3 and a 2021+ map has no 4, so one set serves both.
TUMOUR_CORE_LABELS = (1, 3, 4)


@dataclass(frozen=True)
class BratsCase:
    case_id: str
    channel_paths: tuple[Path, ...]
    seg_path: Path | None


@dataclass(frozen=True, eq=False)
class PreparedCase:
    """A case on the model grid, cropped to the head.

    Attributes:
        image: ``(C, Z, Y, X)`` float32, normalised.
        label: ``(Z, Y, X)`` uint8 tumour core, or None without a segmentation.
        grid: the cropped model grid.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    grid: Grid


def find_cases(root: str | Path, channels: Sequence[str], *, case_ids: Sequence[str] | None = None) -> list[BratsCase]:
    """Cases in a BraTS-layout folder that have every channel (``case_ids`` restricts and orders them)."""
    root = Path(root)
    if not root.is_dir():
        raise InputDataError(f"BraTS folder {root} does not exist")
    unknown = [c for c in channels if c not in BRATS_SUFFIX]
    if unknown:
        raise InputDataError(f"channel(s) {unknown} have no BraTS file suffix; known: {sorted(BRATS_SUFFIX)}")
    dirs = [root / c for c in case_ids] if case_ids is not None else sorted(p for p in root.iterdir() if p.is_dir())
    cases = []
    for d in dirs:
        paths = tuple(d / f"{d.name}_{BRATS_SUFFIX[c]}.nii.gz" for c in channels)
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            if case_ids is not None:
                raise InputDataError(f"BraTS case {d}: missing {missing}")
            logger.warning("skipping %s: missing %s", d.name, missing)
            continue
        seg = d / f"{d.name}_seg.nii.gz"
        cases.append(BratsCase(case_id=d.name, channel_paths=paths, seg_path=seg if seg.is_file() else None))
    if not cases:
        raise InputDataError(f"BraTS folder {root}: no case folder holds all of {list(channels)}")
    return cases


def read_volume(path: Path) -> Volume:
    import SimpleITK as sitk

    try:
        return volume_from_sitk(sitk.ReadImage(str(path)))
    except RuntimeError as e:
        raise InputDataError(f"cannot read image {path}: {e}") from e


def read_tumour_core(case: BratsCase, labels: Sequence[int] = TUMOUR_CORE_LABELS) -> Volume:
    """``(Z, Y, X)`` bool target on the case's own grid: the tumour core, or the union of other ``labels``."""
    if case.seg_path is None:
        raise InputDataError(f"BraTS case {case.case_id} has no _seg file")
    seg = read_volume(case.seg_path)
    return seg.with_array(np.isin(seg.array, tuple(labels)))


def skull_stripped_brain_mask(channels: Sequence[Volume]) -> Volume:
    """The brain mask of skull-stripped data (BraTS): voxels where any channel is non-zero, on the first's grid."""
    ref = channels[0]
    mask = np.zeros(ref.grid.shape, dtype=bool)
    for vol in channels:
        on_ref = vol if vol.grid.same_as(ref.grid) else resample(vol, ref.grid)
        mask |= on_ref.array != 0
    return ref.with_array(mask)


def prepare_case(case: BratsCase, pre: Preprocessing, *, margin: int = CONTENT_MARGIN,
                 labels: Sequence[int] = TUMOUR_CORE_LABELS) -> PreparedCase:
    """Bring a case onto the model grid and crop it to the non-zero (head) region plus ``margin`` voxels.

    When the model normalises inside a brain mask, BraTS's own skull stripping provides it
    (:func:`skull_stripped_brain_mask`); in the clinic the app's brain-extraction model does.
    """
    channels = [read_volume(p) for p in case.channel_paths]
    brain = skull_stripped_brain_mask(channels) if pre.normalisation.region == "mask" else None
    image, grid = to_model_input(channels, pre, brain_mask=brain)
    label = None
    if case.seg_path is not None:
        core = read_tumour_core(case, labels)
        label = resample(core.with_array(core.array.astype(np.float32)), grid).array > 0.5
    sl = content_box(image, pre.normalisation.outside, margin=margin)
    lo, hi = tuple(s.start for s in sl), tuple(s.stop for s in sl)
    return PreparedCase(
        case_id=case.case_id,
        image=np.ascontiguousarray(image[(slice(None), *sl)]),
        label=None if label is None else np.ascontiguousarray(label[sl].astype(np.uint8)),
        grid=crop_grid(grid, tuple(lo), tuple(hi)),
    )


def _cache_key(pre: Preprocessing, labels: Sequence[int] = TUMOUR_CORE_LABELS) -> str:
    d = {
        "channels": pre.channels,
        "spacing": pre.spacing_mm,
        "orientation": pre.orientation,
        "norm": pre.normalisation.to_dict(),
    }
    if tuple(labels) != TUMOUR_CORE_LABELS:  # the tumour-core caches made before this option keep their key
        d["labels"] = sorted(labels)
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def load_prepared(case: BratsCase, pre: Preprocessing, cache_dir: str | Path | None,
                  labels: Sequence[int] = TUMOUR_CORE_LABELS) -> PreparedCase:
    """:func:`prepare_case` with an on-disk ``.npz`` cache keyed by case, preprocessing settings and target labels."""
    if cache_dir is None:
        return prepare_case(case, pre, labels=labels)
    path = Path(cache_dir) / _cache_key(pre, labels) / f"{case.case_id}.npz"
    if path.is_file():
        z = np.load(path)
        label = z["label"] if z["has_label"] else None
        return PreparedCase(case.case_id, z["image"], label, Grid(shape=tuple(z["shape"]), affine=z["affine"]))
    prepared = prepare_case(case, pre, labels=labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    # one temporary name per process: data-parallel ranks may prepare the same case at once; the rename is atomic
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez_compressed(
        tmp,
        image=prepared.image,
        label=prepared.label if prepared.label is not None else np.zeros(1, np.uint8),
        has_label=prepared.label is not None,
        shape=np.array(prepared.grid.shape),
        affine=prepared.grid.affine,
    )
    tmp.replace(path)
    return prepared


def load_split(path: str | Path) -> dict[str, list[str]]:
    """``{"train": [...], "validation": [...]}`` from the split file; the two lists must not overlap."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputDataError(f"split file {path}: {e}") from e
    for key in ("train", "validation"):
        if key not in d or not isinstance(d[key], list):
            raise InputDataError(f"split file {path}: needs a list {key!r}")
    overlap = set(d["train"]) & set(d["validation"])
    if overlap:
        raise InputDataError(f"split file {path}: cases in both train and validation: {sorted(overlap)}")
    return {"train": list(d["train"]), "validation": list(d["validation"])}
