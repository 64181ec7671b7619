"""Export a trained run as the MONAI bundle the app consumes: ``models/model.ts`` + ``configs/metadata.json``.

The metadata is the single place where preprocessing, labels and post-processing are written down; the app reads
it with ``operators.core.model.spec.load_model_spec`` (which checks the same fields and the sha256 written here).
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import tempfile
from pathlib import Path

import monai
import numpy as np
import torch

from operators.core.model.schema import app_metadata
from operators.core.model.spec import (
    METADATA_PATH,
    MODEL_PATH,
    ONNX_FP16_PATH,
    ONNX_PATH,
    parse_metadata,
    sha256_of,
)
from training.config import TrainConfig, _build, with_overrides

logger = logging.getLogger(__name__)

BUNDLE_SCHEMA = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"


def load_run_config(run_dir: Path) -> TrainConfig:
    """The resolved configuration a run saved in ``config.yaml``."""
    import yaml

    return _build(TrainConfig, yaml.safe_load((run_dir / "config.yaml").read_text()), str(run_dir / "config.yaml"))


def load_network(config: TrainConfig, checkpoint: Path) -> torch.nn.Module:
    """The checkpoint's network, in eval mode, with the labels' outputs only (auxiliary targets of region-based
    training are dropped from the final convolution: what the app runs is the same network it always was)."""
    from training.train import FINAL_CONV, build_network

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    n = len(config.labels)
    state = {k: v[:n] if k.startswith(FINAL_CONV) else v for k, v in state.items()}
    net = build_network(config.model, in_channels=config.in_channels, out_channels=n)
    net.load_state_dict(state)
    return net.eval()


class MeanLogits(torch.nn.Module):
    """An ensemble as one network: the mean of its members' logits (each member a network of the same inputs and
    labels). One TorchScript, one ONNX graph and one TensorRT engine run every member, so the app's back ends,
    hashes and sliding window need nothing new."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(dim=0)


def trace_network(net: torch.nn.Module, *, in_channels: int, patch_size) -> torch.jit.ScriptModule:
    """TorchScript of the network by tracing a batch of two patches (what the app's sliding window feeds it).

    Traced, not scripted: a scripted module carries the whole source of functions such as ``F.interpolate``,
    with every branch and the operators they name, and an older PyTorch refuses to load a file that names an
    operator it lacks (torch 2.11 refused a torch 2.13 script over ``_upsample_lanczos2d_aa``). A trace records
    only the operators the network runs. SegResNet has no data-dependent control flow, so the trace is exact for
    any batch and window size (tested).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI's shape checks and the trace API's deprecation notice
        return torch.jit.trace(net, torch.zeros(2, in_channels, *patch_size))


def export_onnx(net: torch.nn.Module, path: Path, *, in_channels: int, patch_size) -> None:
    """ONNX (opset 17) of the eager network with dynamic batch and spatial axes, for ONNX Runtime and TensorRT.

    Exported from the eager module: exporting the scripted one bakes upsampling shapes into the graph.
    """
    dummy = torch.zeros(1, in_channels, *patch_size)
    axes = {0: "batch", 2: "z", 3: "y", 4: "x"}
    torch.onnx.export(net, (dummy,), str(path), opset_version=17, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": axes, "logits": axes}, dynamo=False)


def export_onnx_fp16(src: Path, dst: Path) -> None:
    """The mixed-precision graph TensorRT builds its fp16 engine from (a strongly typed network takes each tensor's
    type from the graph; TensorRT 11 has no fp16 builder flag): every float tensor and weight in fp16 except the
    fp32 input and output (``keep_io_types``), converted by onnxconverter-common, the ONNX project's converter."""
    import warnings

    import onnx
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its notice that tiny weights are rounded to fp16's smallest value
        graph = float16.convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.checker.check_model(graph)
    onnx.save(graph, str(dst))


def add_onnx_fp16(bundle: Path) -> dict:
    """Write ``models/model_fp16.onnx`` beside a bundle's ``model.onnx`` and record its sha256 in the metadata
    (``onnx_fp16_file``, ``onnx_fp16_sha256``); the TorchScript and fp32 ONNX files are left as they are."""
    bundle = Path(bundle)
    meta_file = bundle / METADATA_PATH
    meta = json.loads(meta_file.read_text())
    spec = parse_metadata(meta, root=bundle)
    export_onnx_fp16(spec.verified_onnx_file(), bundle / ONNX_FP16_PATH)
    meta["onnx_fp16_file"], meta["onnx_fp16_sha256"] = str(ONNX_FP16_PATH), sha256_of(bundle / ONNX_FP16_PATH)
    meta_file.write_text(json.dumps(meta, indent=2))
    return meta


def record_validation(bundle: Path, metrics_file: Path) -> dict:
    """Write an ``evaluate`` run's summary (through the app's path) into a bundle's metadata as
    ``training.validation_metrics_1mm_app_path``, where the app reads the validation accuracy it reports."""
    bundle = Path(bundle)
    meta_file = bundle / METADATA_PATH
    meta = json.loads(meta_file.read_text())
    metrics = json.loads(Path(metrics_file).read_text())
    training = meta.setdefault("training", {})
    training["validation_metrics_1mm_app_path"] = {k: metrics["summary"][k] for k in ("dsc", "hd95_mm", "asd_mm")}
    training["validation"] = ("python -m training evaluate (the app's steps, brain extraction included: on these "
                              "skull-stripped cases it keeps their own brain) on each case's own 1 mm grid")
    parse_metadata(meta, root=bundle)
    meta_file.write_text(json.dumps(meta, indent=2))
    return meta


def build_metadata(config: TrainConfig, *, name: str, version: str, sha256: str, training: dict,
                   description: str) -> dict:
    """The bundle metadata: MONAI bundle fields plus ``preprocessing``/``postprocessing``/``labels``/``sha256``."""
    pre = config.preprocessing
    channel_def = {str(i): c for i, c in enumerate(pre.channels)}
    return {
        "schema": BUNDLE_SCHEMA,
        "changelog": {version: "exported by `python -m training export`"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "required_packages_version": {},
        "task": f"{config.task} segmentation on MR ({', '.join(pre.channels)})",
        "description": description,
        "authors": "GBM-GTV Contouring Project",
        "copyright": "Apache-2.0",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "magnitude",
                    "modality": "MR",
                    "num_channels": len(pre.channels),
                    "spatial_shape": list(pre.patch_size),
                    "dtype": "float32",
                    "value_range": [-pre.normalisation.clip, pre.normalisation.clip],
                    "is_patch_data": True,
                    "channel_def": channel_def,
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "logits",
                    "num_channels": len(config.labels),
                    "spatial_shape": list(pre.patch_size),
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": True,
                    "channel_def": {str(i): lab for i, lab in enumerate(config.labels)},
                }
            },
        },
        # --- read by the app (operators.core.model.schema, validated by operators.core.model.spec) ---
        **app_metadata(name=name, version=version, sha256=sha256, labels=config.labels, preprocessing=pre,
                       postprocessing=config.postprocessing),
        "model_file": str(MODEL_PATH),
        "network": {"class": "monai.networks.nets.SegResNet", "init_filters": config.model.init_filters,
                    "blocks_down": list(config.model.blocks_down), "blocks_up": list(config.model.blocks_up)},
        "training": {**training, "environment": {"python": platform.python_version(), "machine": platform.machine()}},
    }


def checkpoint_facts(path: Path) -> dict:
    """What a ``last.pt`` or ``average.pt`` holds, for the bundle's metadata."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if "averaged_epochs" in ck:
        first, last = ck["averaged_epochs"]
        return {"checkpoint": f"{path.name} (the mean of the weights at the end of epochs {first}-{last})",
                "averaged_epochs": [first, last]}
    return {"checkpoint": f"{path.name} (epoch {ck['epoch'] + 1})", "epoch": ck["epoch"] + 1}


def load_ensemble(run_dirs: list[Path], checkpoint: str = "best.pt") -> tuple[TrainConfig, torch.nn.Module, list[dict]]:
    """The networks of several runs' ``checkpoint`` files (each run's best or final epoch) as one
    :class:`MeanLogits` (their configurations must agree on everything the app reads: channels, grid, patch, labels,
    post-processing, network), with each run's facts."""
    configs = [load_run_config(r) for r in run_dirs]
    first = configs[0]
    for r, c in zip(run_dirs[1:], configs[1:]):
        for part in ("preprocessing", "postprocessing", "labels", "model"):
            if getattr(c, part) != getattr(first, part):
                raise ValueError(f"ensemble: {r}'s {part} differs from {run_dirs[0]}'s")
    members, facts = [], []
    for r, c in zip(run_dirs, configs):
        history = json.loads((r / "history.json").read_text())
        members.append(load_network(c, r / checkpoint))
        fact = {"run": str(r), "seed": c.seed, "best_epoch": history["best_epoch"],
                "best_validation_dice_model_grid": round(history["best_val_dice"], 4), "init": c.init}
        if checkpoint != "best.pt":
            fact["checkpoint"] = checkpoint_facts(r / checkpoint)["checkpoint"]
        facts.append(fact)
    return first, MeanLogits(members).eval(), facts


def export_bundle(run_dir: str | Path | list, out: str | Path, *, name: str, version: str,
                  training: dict | None = None, description: str = "", checkpoint: str = "best.pt",
                  docs: dict[str, Path] | None = None, overrides: list[str] | None = None) -> Path:
    """Write the bundle for ``run_dir``'s best checkpoint into ``out`` (replaced atomically). A list of run folders
    exports their ensemble (:class:`MeanLogits` of each run's checkpoint) as the bundle's one network.

    Args:
        training: facts for ``metadata["training"]`` (case IDs, metrics, command); the run's history is added.
        docs: extra files copied into ``docs/`` (report, learning curve).
        checkpoint: the checkpoint file in each run folder: ``best.pt`` (the best validation epoch), ``last.pt``
            (the final epoch) or ``average.pt`` (the weights averaged over the final epochs); the metadata names
            which epochs a ``last.pt`` or ``average.pt`` holds.
        overrides: ``"postprocessing.KEY=VALUE"`` or ``"quality.KEY=VALUE"`` changes to the run's config for this
            bundle's metadata (e.g. the same weights with another post-processing); recorded in its ``training``.
    """
    runs = [Path(r) for r in run_dir] if isinstance(run_dir, (list, tuple)) else [Path(run_dir)]
    run_dir, out = runs[0], Path(out)
    config = load_run_config(run_dir)
    history = json.loads((run_dir / "history.json").read_text())
    members = None
    tmp = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent if out.parent.exists() else None))
    try:
        (tmp / MODEL_PATH).parent.mkdir(parents=True)
        (tmp / METADATA_PATH).parent.mkdir(parents=True)
        if len(runs) > 1:
            config, net, members = load_ensemble(runs, checkpoint)
        else:
            net = load_network(config, run_dir / checkpoint)
        if overrides:
            config = with_overrides(config, overrides)
        trace_network(net, in_channels=config.in_channels, patch_size=config.preprocessing.patch_size).save(
            str(tmp / MODEL_PATH))
        sha = sha256_of(tmp / MODEL_PATH)
        export_onnx(net, tmp / ONNX_PATH, in_channels=config.in_channels, patch_size=config.preprocessing.patch_size)
        if config.task in ("hippocampus", "brain"):
            from training.source_data import TRAIN_MAP_NUMBERS, VALIDATION_MAP_NUMBERS

            facts_data = {"training_label_maps": sorted(TRAIN_MAP_NUMBERS),
                          "validation_label_maps": sorted(VALIDATION_MAP_NUMBERS),
                          "validation": "Dice on synthetic images generated from the held-out label maps"}
        else:
            facts_data = {"brats_labels": list(config.data.brats_labels)}
            if config.data.auxiliary_labels:
                facts_data["auxiliary_labels_in_training"] = [list(s) for s in config.data.auxiliary_labels]
        facts = {"run": config.name, "best_epoch": history["best_epoch"], **facts_data,
                 "best_validation_dice_model_grid": round(history["best_val_dice"], 4), "init": config.init,
                 **({"export_overrides": list(overrides)} if overrides else {}), **(training or {})}
        if checkpoint != "best.pt" and not members:  # last.pt or average.pt: say which epochs the bundle holds
            facts.update(checkpoint_facts(run_dir / checkpoint))
        if members:
            if checkpoint != "best.pt":
                facts["checkpoint"] = f"{checkpoint} of each member"
            facts.update({"ensemble": members, "best_epoch": [m["best_epoch"] for m in members],
                          "best_validation_dice_model_grid": [m["best_validation_dice_model_grid"] for m in members]})
        meta = build_metadata(config, name=name, version=version, sha256=sha, training=facts,
                              description=description or f"{config.task} SegResNet trained by the training module")
        if members:
            meta["network"]["ensemble"] = {"members": len(members), "combination": "mean of the members' logits"}
        meta["onnx_file"], meta["onnx_sha256"] = str(ONNX_PATH), sha256_of(tmp / ONNX_PATH)
        if "GTV" in config.labels:  # the validated range and the quality verdict's limits (docs/quality.md)
            meta["quality"] = config.quality.to_dict()
        export_onnx_fp16(tmp / ONNX_PATH, tmp / ONNX_FP16_PATH)
        meta["onnx_fp16_file"], meta["onnx_fp16_sha256"] = str(ONNX_FP16_PATH), sha256_of(tmp / ONNX_FP16_PATH)
        parse_metadata(meta, root=out)  # the app's own checks, before anything is written in place
        (tmp / METADATA_PATH).write_text(json.dumps(meta, indent=2))
        for fname, src in (docs or {}).items():
            (tmp / "docs").mkdir(exist_ok=True)
            shutil.copyfile(src, tmp / "docs" / fname)
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(out)
        out.chmod(0o755)  # mkdtemp made it private
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("exported %s %s (sha256 %s) to %s", name, version, sha, out)
    return out
