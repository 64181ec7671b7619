"""The model folder: a MONAI bundle (``configs/metadata.json``, ``models/model.ts``) and its checks.

The metadata is the only link between training and the app. Training writes it (``training.export``); the app
reads it here and nowhere else, verifying the TorchScript file's sha256 *before* anything loads it (TorchScript
can run code).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from operators.core.errors import ModelSpecError
from operators.core.labels import structure
from operators.core.model.files import deepbet_weight_files, sha256_of
from operators.core.model.schema import Postprocessing, Preprocessing
from operators.core.steps.quality import QualityLimits

logger = logging.getLogger(__name__)

METADATA_PATH = Path("configs") / "metadata.json"
MODEL_PATH = Path("models") / "model.ts"
ONNX_PATH = Path("models") / "model.onnx"  # optional: the same network for ONNX Runtime and TensorRT
ONNX_FP16_PATH = Path("models") / "model_fp16.onnx"  # optional: its mixed-precision form, for TensorRT fp16

__all__ = ["METADATA_PATH", "MODEL_PATH", "ONNX_FP16_PATH", "ONNX_PATH", "ModelSpec", "find_gtv_models", "find_model",
           "load_model_spec", "parse_metadata", "sha256_of"]


@dataclass(frozen=True)
class ModelSpec:
    """A verified model folder.

    Attributes:
        root: the bundle folder.
        name, version: model identity, written into every output.
        sha256: hash of ``models/model.ts``, verified on load.
        labels: structure keys in output-channel order (keys of :data:`operators.core.labels.STRUCTURES`).
        preprocessing, postprocessing: see those classes.
        quality: the validated range and the limits of the quality signals (:mod:`operators.core.steps.quality`).
        metadata: the whole parsed metadata.json, for reports.
    """

    root: Path
    name: str
    version: str
    sha256: str
    labels: tuple[str, ...]
    preprocessing: Preprocessing
    postprocessing: Postprocessing
    metadata: dict = field(repr=False, default_factory=dict)
    quality: QualityLimits = field(default_factory=QualityLimits)

    @property
    def model_file(self) -> Path:
        return self.root / MODEL_PATH

    @property
    def onnx_sha256(self) -> str | None:
        return self.metadata.get("onnx_sha256")

    def verified_onnx_file(self, precision: str = "fp32") -> Path:
        """``models/model.onnx`` (``precision="fp32"``) or ``models/model_fp16.onnx`` (``"fp16"``: fp16 weights and
        activations, fp32 input and output) after checking its sha256 against ``onnx_sha256`` /
        ``onnx_fp16_sha256`` in the metadata."""
        if precision not in ("fp32", "fp16"):
            raise ModelSpecError(f"ONNX precision must be 'fp32' or 'fp16', found {precision!r}")
        rel, key = (ONNX_PATH, "onnx_sha256") if precision == "fp32" else (ONNX_FP16_PATH, "onnx_fp16_sha256")
        path, expected = self.root / rel, self.metadata.get(key)
        if expected is None or not path.is_file():
            raise ModelSpecError(f"model folder {self.root}: no {rel} with an {key} in {METADATA_PATH}")
        actual = sha256_of(path)
        if actual != expected:
            raise ModelSpecError(f"model file {path}: sha256 {actual} does not match {key} {expected} "
                                 f"in {METADATA_PATH}; refusing to load it")
        return path

    @property
    def backend(self) -> str:
        """``"segresnet"`` (the project's TorchScript/ONNX bundles) or ``"deepbet"`` (weights in the deepbet
        package, see :mod:`operators.core.model.deepbet`)."""
        return str(self.metadata.get("backend", "segresnet"))

    def validation(self) -> dict | None:
        """The validation accuracy training recorded for this model (``training.validation_metrics_1mm_app_path``,
        through the app's path): ``{"dsc", "hd95_mm", "n"}`` means, or None when the metadata holds none."""
        training = self.metadata.get("training", {})
        metrics = training.get("validation_metrics_1mm_app_path") or training.get("validation_metrics_1mm")
        if not metrics or "dsc" not in metrics:
            return None
        return {"dsc": round(float(metrics["dsc"]["mean"]), 3),
                "hd95_mm": round(float(metrics["hd95_mm"]["mean"]), 1) if "hd95_mm" in metrics else None,
                "n": int(metrics["dsc"]["n"]), "how": str(training.get("validation", ""))}

    def identity(self) -> dict:
        """Name, version and hash, for reports and DICOM headers."""
        return {"name": self.name, "version": self.version, "sha256": self.sha256}


def _require(d: dict, key: str, where: str, source: Path):
    if key not in d:
        raise ModelSpecError(f"model metadata {source}: required field {where}{key!r} is missing")
    return d[key]


def parse_metadata(meta: dict, *, root: Path) -> ModelSpec:
    """Validate a metadata dict (as training writes it) and build the spec; no file access."""
    source = root / METADATA_PATH
    try:
        pre = Preprocessing.from_dict(_require(meta, "preprocessing", "", source),
                                      where=f"model metadata {source}: preprocessing")
        post = Postprocessing.from_dict(meta.get("postprocessing"), where=f"model metadata {source}: postprocessing")
    except (TypeError, ValueError) as e:  # a value of the wrong kind (the schema raises ModelSpecError itself)
        raise ModelSpecError(f"model metadata {source}: {e}") from e
    labels = tuple(_require(meta, "labels", "", source))
    for key in labels:
        structure(key)  # raises ModelSpecError for unknown names
    try:
        quality = QualityLimits.from_dict(meta.get("quality"))
    except (TypeError, ValueError) as e:
        raise ModelSpecError(f"model metadata {source}: quality: {e}") from e
    sha = _require(meta, "sha256", "", source)
    if not (isinstance(sha, str) and len(sha) == 64):
        raise ModelSpecError(f"model metadata {source}: sha256 must be 64 hex characters, found {sha!r}")
    return ModelSpec(
        root=root,
        name=str(_require(meta, "name", "", source)),
        version=str(_require(meta, "version", "", source)),
        sha256=sha,
        labels=labels,
        preprocessing=pre,
        postprocessing=post,
        metadata=meta,
        quality=quality,
    )


def load_model_spec(root: Path | str) -> ModelSpec:
    """Read and verify a bundle folder: metadata present and complete, model.ts present, sha256 equal.

    Raises:
        ModelSpecError: naming the folder, the file and the field or hash at fault.
    """
    root = Path(root)
    if not root.is_dir():
        raise ModelSpecError(f"model folder {root} does not exist or is not a folder")
    meta_file = root / METADATA_PATH
    if not meta_file.is_file():
        raise ModelSpecError(f"model folder {root}: {METADATA_PATH} is missing (expected a MONAI bundle layout)")
    spec = parse_metadata(_read_metadata(meta_file), root=root)
    if spec.backend == "deepbet":
        deepbet_weight_files(root, spec.metadata)  # raises ModelSpecError on a missing package, file or hash mismatch
        logger.info("model %s version %s (deepbet weights), sha256 %s verified", spec.name, spec.version, spec.sha256)
        return spec
    if spec.backend != "segresnet":
        raise ModelSpecError(f"model metadata {meta_file}: backend must be 'segresnet' or 'deepbet', "
                             f"found {spec.backend!r}")
    model_file = root / MODEL_PATH
    if not model_file.is_file():
        raise ModelSpecError(f"model folder {root}: {MODEL_PATH} is missing")
    actual = sha256_of(model_file)
    if actual != spec.sha256:
        raise ModelSpecError(
            f"model file {model_file}: sha256 {actual} does not match the sha256 recorded in {METADATA_PATH} "
            f"({spec.sha256}); refusing to load it"
        )
    logger.info("model %s version %s, sha256 %s verified", spec.name, spec.version, spec.sha256)
    return spec


def find_model(models_root: Path | str, name: str | None = None, *, beside: Path | None = None) -> ModelSpec:
    """Find a bundle in a models folder as MONAI Deploy lays it out.

    ``models_root`` is either a bundle itself (holds ``configs/metadata.json``) or a folder of bundles
    (``models_root/<name>/configs/metadata.json``). With ``name``, the bundle of that folder name (looked for in
    ``models_root``, then beside the bundle ``beside``); without, the GTV bundle of the richest channel configuration
    (:func:`find_gtv_models`).
    """
    models_root = Path(models_root)
    if (models_root / METADATA_PATH).is_file() and name is None:
        return load_model_spec(models_root)
    if not models_root.is_dir():
        raise ModelSpecError(f"model folder {models_root} does not exist or is not a folder")
    if name is not None:
        candidates = [models_root / name] + ([Path(beside).parent / name] if beside is not None else [])
        for candidate in candidates:
            if (candidate / METADATA_PATH).is_file():
                return load_model_spec(candidate)
        raise ModelSpecError(f"model {name!r} named in the GTV model's metadata (preprocessing.brain_mask_model) "
                             f"not found in {' or '.join(str(c) for c in candidates)}")
    gtv = find_gtv_models(models_root)
    return gtv[0]


def find_gtv_models(models_root: Path | str) -> list[ModelSpec]:
    """Every GTV bundle (labels include ``"GTV"``) of a models folder, verified, richest channel configuration
    first (see :mod:`operators.core.selection.configuration`); a bundle folder itself gives a list of one.

    Raises:
        ModelSpecError: no GTV bundle, or two with the same channels (the choice between them would be arbitrary).
    """
    models_root = Path(models_root)
    if (models_root / METADATA_PATH).is_file():
        return [load_model_spec(models_root)]
    if not models_root.is_dir():
        raise ModelSpecError(f"model folder {models_root} does not exist or is not a folder")
    bundles = sorted(p for p in models_root.iterdir() if (p / METADATA_PATH).is_file())
    if not bundles:
        raise ModelSpecError(f"model folder {models_root} holds no model bundle: neither {METADATA_PATH} nor "
                             f"<name>/{METADATA_PATH} exists")
    gtv = [p for p in bundles if "GTV" in _read_metadata(p / METADATA_PATH).get("labels", [])]
    if not gtv:
        raise ModelSpecError(f"model folder {models_root}: no bundle with label 'GTV' among "
                             f"{[p.name for p in bundles]}")
    channels = [tuple(_read_metadata(p / METADATA_PATH).get("preprocessing", {}).get("channels", [])) for p in gtv]
    for c in set(channels):
        same = [p.name for p, other in zip(gtv, channels) if other == c]
        if len(same) > 1:
            raise ModelSpecError(f"model folder {models_root}: bundles {same} are GTV models for the same channels "
                                 f"{list(c)}; keep one")
    specs = [load_model_spec(p) for p in gtv]
    return sorted(specs, key=lambda s: -len(s.preprocessing.channels))


def _read_metadata(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelSpecError(f"model metadata {path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise ModelSpecError(f"model metadata {path} must hold a JSON object, found {type(meta).__name__}")
    return meta
