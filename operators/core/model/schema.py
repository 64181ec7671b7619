"""The model-metadata schema: what a model folder tells the app, in one typed form with one set of defaults.

Training fills these classes from its YAML configuration (:mod:`training.config`), export serialises them into
``configs/metadata.json`` (:func:`app_metadata`), the app validates the file back into them
(:func:`operators.core.model.spec.parse_metadata`), and the tests build their model fixtures from them. Every
default lives here and nowhere else.

Axis conventions: ``spacing_mm`` is physical ``(x, y, z)``; ``patch_size`` is array ``(Z, Y, X)`` (see
docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from operators.core.errors import ModelSpecError
from operators.core.steps.intensity import Normalisation

ORIENTATION_CODES = ("LPS", "RAS")
ACTIVATIONS = ("sigmoid", "softmax")  # sigmoid: one per output channel (labels may overlap); softmax: deepbet


def _unknown_keys(cls: type, d: dict, where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ModelSpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}")


@dataclass(frozen=True)
class Preprocessing:
    """What the app must do to an input before the network sees it (written by training).

    Attributes:
        channels: sequence names in the network's channel order, e.g. ``("T1c", "FLAIR")``.
        spacing_mm: model grid spacing ``(x, y, z)`` in mm.
        orientation: model grid orientation code (``"LPS"`` or ``"RAS"``).
        normalisation: per-channel intensity normalisation.
        patch_size: sliding-window ROI ``(Z, Y, X)`` in model-grid voxels.
        overlap: sliding-window overlap fraction.
        brain_mask_model: name of the brain-extraction model whose mask restricts normalisation and output, or None.
    """

    channels: tuple[str, ...] = ("T1c", "FLAIR")
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 2.0)
    orientation: str = "LPS"
    normalisation: Normalisation = field(default_factory=Normalisation)
    patch_size: tuple[int, int, int] = (64, 64, 64)
    overlap: float = 0.25
    brain_mask_model: str | None = None

    #: keys a model's metadata must state (a model folder never relies on a default for its grid or inputs)
    REQUIRED = ("channels", "spacing_mm", "orientation", "normalisation", "patch_size")

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "preprocessing", require_all: bool = True) -> Preprocessing:
        """Validated from a metadata or configuration mapping.

        Raises:
            ModelSpecError: naming ``where`` and the key at fault.
        """
        if not isinstance(d, dict):
            raise ModelSpecError(f"{where}: expected a mapping, found {type(d).__name__}")
        _unknown_keys(cls, d, where)
        if require_all:
            for key in cls.REQUIRED:
                if key not in d:
                    raise ModelSpecError(f"{where}: required field {key!r} is missing")
        kw: dict[str, Any] = {}
        if "channels" in d:
            channels = tuple(d["channels"] or ())
            if not channels or not all(isinstance(c, str) and c for c in channels):
                raise ModelSpecError(f"{where}.channels must be non-empty names, found {list(channels)}")
            kw["channels"] = channels
        if "spacing_mm" in d:
            spacing = tuple(float(v) for v in d["spacing_mm"])
            if len(spacing) != 3 or min(spacing) <= 0:
                raise ModelSpecError(f"{where}.spacing_mm must be 3 positive values, found {list(spacing)}")
            kw["spacing_mm"] = spacing
        if "orientation" in d:
            if d["orientation"] not in ORIENTATION_CODES:
                raise ModelSpecError(f"{where}.orientation must be one of {ORIENTATION_CODES}, "
                                     f"found {d['orientation']!r}")
            kw["orientation"] = d["orientation"]
        if "normalisation" in d:
            norm = d["normalisation"]
            kw["normalisation"] = norm if isinstance(norm, Normalisation) else Normalisation.from_dict(dict(norm))
        if "patch_size" in d:
            patch = tuple(int(v) for v in d["patch_size"])
            if len(patch) != 3 or min(patch) < 8:
                raise ModelSpecError(f"{where}.patch_size must be 3 sizes >= 8, found {list(patch)}")
            kw["patch_size"] = patch
        if "overlap" in d:
            kw["overlap"] = float(d["overlap"])
        if "brain_mask_model" in d:
            kw["brain_mask_model"] = d["brain_mask_model"]
        return cls(**kw)

    def to_dict(self) -> dict:
        """The metadata form (JSON types), which :meth:`from_dict` reads back to an equal object."""
        return {"channels": list(self.channels), "spacing_mm": list(self.spacing_mm), "orientation": self.orientation,
                "normalisation": self.normalisation.to_dict(), "patch_size": list(self.patch_size),
                "overlap": self.overlap, "brain_mask_model": self.brain_mask_model}


@dataclass(frozen=True)
class Postprocessing:
    """Attributes:
    threshold: probability above which a voxel is foreground.
    min_component_mm3: connected components smaller than this are dropped.
    fill_holes: fill enclosed holes (3-D) in each output mask.
    min_component_fraction: components smaller than this fraction of the largest one are dropped (glioblastoma is
        usually one lesion; small distant components are mostly enhancing vessels and dura).
    keep_core_mm3: a component that ``min_component_fraction`` would drop is kept when at least this volume of it
        lies above ``core_threshold``: a second lesion the network is sure of (multifocal glioblastoma) is contoured
        for review, not dropped (0: never kept).
    core_threshold: the probability above which a voxel belongs to a component's confident core.
    dilate_mm: grow each output mask by this distance (mm, physical spacing); the brain model uses it as a safety
        margin so that tumour at the brain surface stays inside the mask.
    largest_component: keep only the largest connected component (the brain is one piece).
    fill_holes_slicewise: also fill holes slice by slice (a cavity open to the surface in 3-D is closed in-plane).
    activation: how the network's output becomes a probability (``"sigmoid"``; ``"softmax"`` for deepbet, whose
        back end applies it itself).
    stripped_input_zero_fraction: a brain model's test for skull-stripped input: when at least this share of the
        shell 5-15 mm outside its brain is exactly 0 (no skull, no scalp), the input was skull-stripped before it
        came, and its own non-zero region is the brain (0: never).
    """

    threshold: float = 0.5
    min_component_mm3: float = 0.0
    fill_holes: bool = True
    dilate_mm: float = 0.0
    min_component_fraction: float = 0.0
    keep_core_mm3: float = 0.0
    core_threshold: float = 0.9
    largest_component: bool = False
    fill_holes_slicewise: bool = False
    activation: str = "sigmoid"
    stripped_input_zero_fraction: float = 0.0

    @classmethod
    def from_dict(cls, d: dict | None, *, where: str = "postprocessing") -> Postprocessing:
        """Validated from a metadata or configuration mapping; absent keys take the defaults above.

        Raises:
            ModelSpecError: naming ``where`` and the key at fault.
        """
        d = dict(d or {})
        _unknown_keys(cls, d, where)
        activation = d.pop("activation", "sigmoid")
        if activation not in ACTIVATIONS:
            raise ModelSpecError(f"{where}.activation must be one of {ACTIVATIONS}, found {activation!r}")
        kw: dict[str, Any] = {"activation": activation}
        for f in dataclasses.fields(cls):
            if f.name in d:
                kind = bool if isinstance(f.default, bool) else float
                try:
                    kw[f.name] = kind(d[f.name])
                except (TypeError, ValueError):
                    raise ModelSpecError(f"{where}.{f.name} must be a {kind.__name__}, found {d[f.name]!r}") from None
        post = cls(**kw)
        if not 0.0 < post.threshold < 1.0:
            raise ModelSpecError(f"{where}.threshold must lie between 0 and 1, found {post.threshold}")
        if not post.threshold <= post.core_threshold < 1.0:
            raise ModelSpecError(f"{where}.core_threshold must lie between threshold ({post.threshold}) and 1, found "
                                 f"{post.core_threshold}")
        if post.keep_core_mm3 < 0.0:
            raise ModelSpecError(f"{where}.keep_core_mm3 must not be negative, found {post.keep_core_mm3}")
        if not 0.0 <= post.stripped_input_zero_fraction <= 1.0:
            raise ModelSpecError(f"{where}.stripped_input_zero_fraction must lie between 0 and 1, found "
                                 f"{post.stripped_input_zero_fraction}")
        return post

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def app_metadata(*, name: str, version: str, sha256: str, labels: tuple[str, ...] | list[str],
                 preprocessing: Preprocessing, postprocessing: Postprocessing) -> dict:
    """The part of ``configs/metadata.json`` the app reads (export adds the MONAI bundle fields, the quality limits
    and the training record around it; tests write it as it is)."""
    return {"name": name, "version": version, "labels": list(labels), "sha256": sha256,
            "preprocessing": preprocessing.to_dict(), "postprocessing": postprocessing.to_dict()}
