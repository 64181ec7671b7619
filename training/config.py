"""Training configuration: frozen dataclasses loaded once from YAML, with ``--set key=value`` overrides.

Nothing deeper in the training code reads files or the environment for settings; ``train(config)`` gets them all.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from operators.core.errors import ConfigError, ModelSpecError
from operators.core.model.schema import Postprocessing, Preprocessing
from operators.core.steps.quality import QualityLimits

TASKS = ("gtv", "hippocampus", "hippocampus_msd", "brain")


@dataclass(frozen=True)
class DataConfig:
    """Where the data is and how it is split.

    Attributes:
        root: BraTS-layout folder (task gtv) or SynthSeg label-map folder (hippocampus, brain).
        split_file: JSON with ``train`` and ``validation`` case lists (patient-level, fixed in the repo).
        cache_dir: preprocessed arrays (model grid) are cached here.
        samples_per_epoch: patches (or synthetic volumes) drawn per epoch, all ranks together.
        synth_mode: synthetic contrast, ``"t1"`` or ``"random"`` (synthetic tasks only).
        synth_shape: synthetic output shape (Z, Y, X) (synthetic tasks only).
        validation_per_map: fixed synthetic validation volumes per held-out label map.
        brats_labels: BraTS label values that make the target (task gtv): the tumour core (1, 3, 4) by default;
            (3, 4) for enhancing tumour alone (BraTS 2018 numbers it 4, 2021 on 3).
        auxiliary_labels: region-based training (task gtv; as nnU-Net trains on BraTS): extra targets learnt beside
            the target, each the union of these BraTS label values, e.g. ``[[1, 2, 3, 4]]`` for the whole tumour
            (tumour core and oedema). The network gets one more output per set; validation reads the target's
            output and the export keeps only the target's, so the bundle and the app are unchanged.
    """

    root: str = "../shared/data/brats2018"
    split_file: str = "training/splits/brats2018.json"
    cache_dir: str = "work/cache"
    samples_per_epoch: int = 40
    synth_mode: str = "t1"
    synth_shape: tuple[int, int, int] = (80, 96, 80)
    validation_per_map: int = 2
    brats_labels: tuple[int, ...] = (1, 3, 4)
    auxiliary_labels: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:  # YAML gives lists; the frozen config holds tuples
        object.__setattr__(self, "auxiliary_labels", tuple(tuple(int(v) for v in s) for s in self.auxiliary_labels))


@dataclass(frozen=True)
class ModelConfig:
    """SegResNet (Myronenko 2018, MONAI) hyper-parameters; the same for source and target tasks."""

    init_filters: int = 8
    blocks_down: tuple[int, ...] = (1, 2, 2, 4)
    blocks_up: tuple[int, ...] = (1, 1, 1)
    dropout: float = 0.0
    # deep supervision during training: side heads on this many decoder stages below full resolution, their losses
    # weighted 1/2, 1/4, ... of the main one (0: off). Training only; the exported network is the same SegResNet.
    deep_supervision: int = 0


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation during training (probabilities per sample)."""

    flip_lr: float = 0.5
    #: probability per sample of a flip along the anterior-posterior axis, and independently along the superior-inferior
    #: axis (0: off). Not anatomy the app will meet; it makes mirroring along every axis at inference
    #: (``evaluate --mirror xyz``) an input the network has seen, as nnU-Net trains and infers
    flip_other: float = 0.0
    rotate_deg: float = 10.0
    scale: float = 0.1
    affine_prob: float = 0.3
    intensity_prob: float = 0.5
    bias_field_prob: float = 0.3
    thick_slice_prob: float = 0.2
    thick_slice_mm: tuple[float, float] = (4.0, 7.0)
    noise_prob: float = 0.2
    #: probability per sample that one input channel, drawn at random, is set to 0 (the value outside the brain):
    #: the network cannot lean on one sequence alone, e.g. FLAIR where T1c shows the enhancing rim
    channel_dropout: float = 0.0


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 40
    batch_size: int = 2
    lr: float = 2e-3
    weight_decay: float = 1e-5
    warmup_epochs: int = 1
    num_workers: int = 0
    threads: int = 2
    #: the last ``average_epochs`` epochs run at a constant ``average_lr_factor * lr`` and their end-of-epoch weights
    #: are averaged into ``average.pt`` (stochastic weight averaging); the cosine schedule spans the epochs before
    average_epochs: int = 0
    average_lr_factor: float = 0.25
    #: Dice over the whole batch instead of per patch (nnU-Net's batch Dice): a tumour-free patch then adds its false
    #: positives to the batch's denominator instead of scoring a Dice loss of about 1 on its own
    batch_dice: bool = False
    #: bfloat16 mixed precision (autocast) on the CPU as well; on a GPU it is always on. On a CPU with AVX-512 BF16 a
    #: training step of the GTV network takes about 0.65 s instead of 0.9-1.0 s; the weights differ from an fp32 run's
    cpu_bf16: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        name: run name; the run folder is ``out_dir``.
        task: ``gtv`` (BraTS tumour core), ``hippocampus`` (synthetic source task), ``hippocampus_msd`` (the real
            MSD Task04 source task), ``brain`` (skull stripping).
        labels: output structure names, in output-channel order (see ``operators.core.labels``).
        init: checkpoint to initialise from (transfer learning), or None for training from scratch.
        seed: controls weights, sampling and augmentation.
        quality: the quality verdict's limits written into a GTV model's metadata (defaults: docs/quality.md).
    """

    name: str
    task: str
    out_dir: str
    labels: tuple[str, ...] = ("GTV",)
    init: str | None = None
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    postprocessing: Postprocessing = field(default_factory=Postprocessing)
    quality: QualityLimits = field(default_factory=QualityLimits)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"config {self.name}: task must be one of {TASKS}, found {self.task!r}")
        o = self.optim
        m = self.model
        if not 0 <= m.deep_supervision < len(m.blocks_up):
            raise ConfigError(f"config {self.name}: model.deep_supervision must be in [0, {len(m.blocks_up)}) (decoder "
                              f"stages below full resolution), found {m.deep_supervision}")
        if self.data.auxiliary_labels and self.task != "gtv":
            raise ConfigError(f"config {self.name}: data.auxiliary_labels is for task gtv (BraTS labels), "
                              f"found task {self.task!r}")
        if not 0 <= o.average_epochs < o.epochs or not 0 < o.average_lr_factor <= 1:
            raise ConfigError(f"config {self.name}: optim.average_epochs must be in [0, epochs) and "
                              f"optim.average_lr_factor in (0, 1], found {o.average_epochs} and {o.average_lr_factor}")

    @property
    def in_channels(self) -> int:
        return len(self.preprocessing.channels)

    @property
    def out_channels(self) -> int:
        """The trained network's outputs: the labels, then one per auxiliary target (training only)."""
        return len(self.labels) + len(self.data.auxiliary_labels)

    def to_dict(self) -> dict:
        return _plain(dataclasses.asdict(self))


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _build(cls: type, d: dict, where: str) -> Any:
    """Build a (nested) frozen dataclass from a dict; unknown keys are errors."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, found {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, value in d.items():
        schema = _SCHEMA.get((cls, name))
        sub = _NESTED.get((cls, name))
        if schema is not None:  # the model-metadata schema's own parser and defaults
            try:
                kwargs[name] = schema(value or {}, where=f"{where}.{name}")
            except ModelSpecError as e:
                raise ConfigError(str(e)) from e
        elif sub is not None:
            kwargs[name] = _build(sub, value or {}, f"{where}.{name}")
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e}") from e


def _quality(d: dict, where: str) -> QualityLimits:
    try:
        return QualityLimits.from_dict(d)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


_NESTED = {
    (TrainConfig, "data"): DataConfig,
    (TrainConfig, "model"): ModelConfig,
    (TrainConfig, "augment"): AugmentConfig,
    (TrainConfig, "optim"): OptimConfig,
}
# sections that go into the exported model's metadata: parsed by the schema the app validates them with
_SCHEMA = {
    (TrainConfig, "preprocessing"): lambda d, where: Preprocessing.from_dict(d, where=where, require_all=False),
    (TrainConfig, "postprocessing"): Postprocessing.from_dict,
    (TrainConfig, "quality"): _quality,
}


def _set_path(d: dict, dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = d
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = yaml.safe_load(raw)


#: the sections a finished run's export may change: they go into the bundle's metadata, not into the weights
EXPORT_SECTIONS = ("postprocessing", "quality")


def _apply_overrides(d: dict, overrides: list[str], *, sections: tuple[str, ...] | None = None) -> None:
    """Apply ``"a.b=value"`` overrides (YAML values) to the config dict ``d``; with ``sections``, only keys under
    those sections are accepted."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if sections is not None and (not sep or "." not in key or key.split(".")[0] not in sections):
            raise ConfigError(f"override {item!r}: expected KEY=VALUE with KEY under {' or '.join(sections)}")
        if not sep:
            raise ConfigError(f"override {item!r} must look like key.sub=value")
        _set_path(d, key, raw)


def with_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """``config`` with ``"a.b=value"`` overrides applied, each under one of :data:`EXPORT_SECTIONS`.

    Raises:
        ConfigError: an override outside those sections, malformed, or giving an invalid value.
    """
    d = config.to_dict()
    _apply_overrides(d, overrides, sections=EXPORT_SECTIONS)
    return _build(TrainConfig, d, f"config {config.name} with {overrides}")


def load_config(path: str | Path, overrides: list[str] | None = None, **fields: Any) -> TrainConfig:
    """Load a YAML config; ``overrides`` are ``"a.b=value"`` strings (YAML values); ``fields`` set top-level keys.

    Raises:
        ConfigError: naming the file and the key at fault.
    """
    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    _apply_overrides(d, overrides or [])
    d.update({k: v for k, v in fields.items() if v is not None})
    return _build(TrainConfig, d, str(path))
