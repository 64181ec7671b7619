"""Inference back ends behind one small interface, and the choice between them.

A :class:`Predictor` turns a normalised ``(C, Z, Y, X)`` float32 array on the model grid into ``(L, Z, Y, X)``
float32 probabilities, one channel per label. The sliding window (the training patch size: the network's
GroupNorm statistics depend on the window, so inference windows equal training patches), the back end and the
device are hidden behind it. Back-end libraries are imported lazily. One module per back end:

* ``torchscript`` (:mod:`.torchscript_backend`): ``models/model.ts`` on CPU, or CUDA with fp16 autocast
  (:class:`TorchScriptOptions`).
* ``onnxruntime`` (:mod:`.onnxruntime_backend`): ``models/model.onnx`` with ONNX Runtime's CPU provider.
* ``deepbet`` (:mod:`.deepbet`): the brain-extraction network in the deepbet package, chosen by the model's metadata.
* ``tensorrt`` (:mod:`.tensorrt_backend`): an fp16 engine built by the TensorRT builder as a strongly typed network from
  ``models/model_fp16.onnx`` (the mixed-precision graph ``training export`` writes beside ``model.onnx``: fp16
  inside, fp32 input and output), once per model hash, GPU, TensorRT version, precision and window shape, and cached
  on disk (see :class:`TensorRTPredictor`). Works with TensorRT 10.x and 11.x.
* ``auto``: TensorRT where it and a GPU exist, else TorchScript on CUDA, else the CPU back end named by
  :data:`CPU_PREFERENCE` (chosen by the benchmark on the reference CPU; see README).

Every back end runs its network through :func:`operators.core.model.window.sliding_window`, whose one option is
test-time mirroring (:class:`~operators.core.model.window.Mirroring`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from operators.core.errors import ModelSpecError
from operators.core.model.onnxruntime_backend import OnnxRuntimePredictor
from operators.core.model.spec import ModelSpec, find_model
from operators.core.model.tensorrt_backend import TensorRTPredictor
from operators.core.model.torchscript_backend import TorchScriptOptions, TorchScriptPredictor
from operators.core.model.window import Mirroring, sliding_window

logger = logging.getLogger(__name__)

__all__ = ["BACKENDS", "CPU_PREFERENCE", "Mirroring", "OnnxRuntimePredictor", "Predictor", "TensorRTPredictor",
           "TorchScriptOptions", "TorchScriptPredictor", "load_models", "make_predictor", "sliding_window"]

BACKENDS = ("auto", "torchscript", "onnxruntime", "tensorrt")
#: CPU back end that ``auto`` picks (measured by ``make bench`` on the 2-core reference CPU).
CPU_PREFERENCE = "torchscript"


class Predictor(Protocol):
    """Array in, probabilities out."""

    name: str
    reason: str

    def predict(self, image: np.ndarray) -> np.ndarray:
        """``(C, Z, Y, X)`` float32 normalised image -> ``(L, Z, Y, X)`` float32 probabilities in [0, 1]."""
        ...


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def make_predictor(spec: ModelSpec, *, backend: str = "auto", device: str = "auto",
                   cache_dir: Path | None = None, torchscript: TorchScriptOptions = TorchScriptOptions(),
                   mirror: Mirroring | None = None) -> Predictor:
    """The predictor for a back-end name; ``auto`` picks as the module docstring says and records why.
    ``torchscript`` is passed to :class:`TorchScriptPredictor`; ``mirror`` to every back end but deepbet."""
    if backend not in BACKENDS:
        raise ModelSpecError(f"inference back end {backend!r} is not one of {BACKENDS}")
    cuda = False
    if device in ("auto", "cuda"):
        import torch

        cuda = torch.cuda.is_available()
        if device == "cuda" and not cuda:
            raise ModelSpecError("device 'cuda' was requested but no CUDA GPU is available")
    if spec.backend == "deepbet":
        from operators.core.model.deepbet import DeepbetPredictor

        if mirror is not None and mirror.axes:
            raise ModelSpecError("test-time mirroring is not available for the deepbet back end")
        return DeepbetPredictor(spec, device=device)
    cache_dir = Path(cache_dir or os.environ.get("GTV_ENGINE_CACHE", Path.home() / ".cache" / "gtv-engines"))
    if backend == "auto":
        if cuda and _importable("tensorrt") and spec.metadata.get("onnx_fp16_sha256"):
            return TensorRTPredictor(spec, cache_dir=cache_dir, reason="auto: CUDA GPU and TensorRT available",
                                     mirror=mirror)
        if cuda:
            why = "auto: CUDA GPU available, TensorRT " + ("has no ONNX model" if _importable("tensorrt")
                                                             else "not installed")
            return TorchScriptPredictor(spec, device="cuda", reason=why, options=torchscript, mirror=mirror)
        if CPU_PREFERENCE == "onnxruntime" and spec.onnx_sha256 and _importable("onnxruntime"):
            return OnnxRuntimePredictor(spec, reason="auto: no GPU; ONNX Runtime measured fastest on CPU",
                                        mirror=mirror)
        return TorchScriptPredictor(spec, device="cpu", reason="auto: no GPU; TorchScript measured fastest on CPU",
                                    options=torchscript, mirror=mirror)
    if backend == "torchscript":
        return TorchScriptPredictor(spec, device=device, options=torchscript, mirror=mirror)
    if backend == "onnxruntime":
        return OnnxRuntimePredictor(spec, mirror=mirror)
    return TensorRTPredictor(spec, cache_dir=cache_dir, mirror=mirror)


def load_models(models_root: Path | str, *, backend: str = "auto", device: str = "auto",
                torchscript: TorchScriptOptions = TorchScriptOptions(), spec: ModelSpec | None = None,
                mirror: Mirroring | None = None) -> tuple[ModelSpec, Predictor, tuple[ModelSpec, Predictor] | None]:
    """The GTV bundle in ``models_root`` (the richest channel configuration, or ``spec`` when given) and its
    predictor, plus the brain-extraction bundle and predictor its metadata names (``preprocessing.brain_mask_model``),
    or None when it names none. Every hash is verified. ``mirror`` applies to the GTV model only (mirroring the
    brain model's input put both orbits inside the brain mask)."""
    spec = spec or find_model(models_root)
    predictor = make_predictor(spec, backend=backend, device=device, torchscript=torchscript, mirror=mirror)
    brain = None
    if spec.preprocessing.brain_mask_model:
        brain_spec = find_model(models_root, spec.preprocessing.brain_mask_model, beside=spec.root)
        brain = (brain_spec, make_predictor(brain_spec, backend=backend, device=device, torchscript=torchscript))
    return spec, predictor, brain
