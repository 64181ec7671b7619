"""Inference back ends behind one small interface.

A :class:`Predictor` turns a normalised ``(C, Z, Y, X)`` float32 array on the model grid into ``(L, Z, Y, X)``
float32 probabilities, one channel per label. The sliding window (the training patch size: the network's
GroupNorm statistics depend on the window, so inference windows equal training patches), the back end and the
device are hidden behind it. Back-end libraries are imported lazily.

Back ends:

* ``torchscript``: ``models/model.ts`` on CPU, or CUDA with fp16 autocast (:class:`TorchScriptOptions`).
  TorchScript's profiling optimiser is off by default (``jit_optimize``): the app runs once per study, and the
  optimiser's first calls compile fused kernels (NVRTC on CUDA) for a steady-state gain measured at none (H200:
  25.8 ms optimised TorchScript fp16 vs 24.8 ms eager on the reference grid; 2-core CPU: the same cold-process time
  either way, ``tools/benchmarks/bench.py``).
* ``onnxruntime``: ``models/model.onnx`` with ONNX Runtime's CPU provider.
* ``tensorrt``: an fp16 engine built by the TensorRT builder as a strongly typed network from
  ``models/model_fp16.onnx`` (the mixed-precision graph ``training export`` writes beside ``model.onnx``: fp16
  inside, fp32 input and output), once per model hash, GPU, TensorRT version, precision and window shape, and cached
  on disk (see :class:`TensorRTPredictor`). Works with TensorRT 10.x and 11.x.
* ``auto``: TensorRT where it and a GPU exist, else TorchScript on CUDA, else the CPU back end named by
  :data:`CPU_PREFERENCE` (chosen by the benchmark on the reference CPU; see README).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from operators.core.errors import ModelSpecError
from operators.core.model.spec import ModelSpec, find_model

logger = logging.getLogger(__name__)

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


def sliding_window(image: np.ndarray, spec: ModelSpec, forward: Callable, *, device="cpu", sw_batch_size: int = 2):
    """Gaussian-weighted sliding-window logits over the training patch size, then sigmoid, on the content box.

    Only the box around the image content (:func:`operators.core.steps.preprocess.content_box`, as training crops its
    cases) is inferred; probabilities outside it are 0.

    Args:
        forward: ``(N, C, *patch) torch tensor -> (N, L, *patch) logits``.

    Returns:
        ``(L, Z, Y, X)`` float32 probabilities (numpy).
    """
    import torch
    from monai.inferers import sliding_window_inference

    from operators.core.steps.preprocess import content_box

    pre = spec.preprocessing
    box = content_box(image, float(pre.normalisation.outside))
    out = np.zeros((len(spec.labels), *image.shape[1:]), dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(image[(slice(None), *box)], dtype=np.float32))[None].to(device)
    with torch.inference_mode():
        logits = sliding_window_inference(
            x, roi_size=pre.patch_size, sw_batch_size=sw_batch_size, predictor=forward, overlap=pre.overlap,
            mode="gaussian", padding_mode="constant", cval=float(pre.normalisation.outside),
        )  # fmt: skip
        probs = torch.sigmoid(logits.float())[0]
    out[(slice(None), *box)] = probs.cpu().numpy()
    return out


@dataclass(frozen=True)
class TorchScriptOptions:
    """How the TorchScript back end runs (the benchmark varies these; the app keeps the defaults).

    Attributes:
        jit_optimize: TorchScript's profiling optimiser (fusion, specialisation); off, see the module docstring.
        cuda_fp16: fp16 autocast on CUDA; fp32 when False. No effect on CPU.
    """

    jit_optimize: bool = False
    cuda_fp16: bool = True


class TorchScriptPredictor:
    """``models/model.ts`` (its hash was checked when the spec was loaded), run as ``options`` say."""

    def __init__(self, spec: ModelSpec, *, device: str = "auto", reason: str = "requested",
                 options: TorchScriptOptions = TorchScriptOptions()) -> None:
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.fp16 = options.cuda_fp16 and self.device.type == "cuda"
        self.name = f"torchscript-{self.device.type}" + ("-fp16" if self.fp16 else "")
        self.reason = reason
        self.spec = spec
        self.options = options
        try:
            self.module = torch.jit.load(str(spec.model_file), map_location=self.device).eval()
        except RuntimeError as e:
            written = spec.metadata.get("pytorch_version", "an unrecorded version")
            raise ModelSpecError(
                f"model file {spec.model_file} is not a loadable TorchScript module (written by PyTorch {written}, "
                f"this runtime has {torch.__version__}; TorchScript loads in the PyTorch that wrote it or a newer "
                f"one): {str(e).strip().splitlines()[0]}") from e

    def _forward(self, x):
        import torch

        with (torch.jit.optimized_execution(self.options.jit_optimize),
              torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16)):
            return self.module(x)

    def predict(self, image: np.ndarray) -> np.ndarray:
        return sliding_window(image, self.spec, self._forward, device=self.device)


class OnnxRuntimePredictor:
    """``models/model.onnx`` (hash checked here, before loading) with ONNX Runtime's CPU provider; with
    ``precision="fp16"`` the mixed-precision ``models/model_fp16.onnx`` that TensorRT builds its fp16 engine from
    (the CPU's check of that graph, not a faster CPU path)."""

    def __init__(self, spec: ModelSpec, *, threads: int | None = None, reason: str = "requested",
                 precision: str = "fp32") -> None:
        import onnxruntime as ort

        path = spec.verified_onnx_file(precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.spec, self.reason = spec, reason
        self.name = "onnxruntime-cpu" + ("" if precision == "fp32" else f"-{precision}")

    def _forward(self, x):
        import torch

        return torch.from_numpy(self.session.run(None, {"image": x.numpy()})[0])

    def predict(self, image: np.ndarray) -> np.ndarray:
        return sliding_window(image, self.spec, self._forward)


class TensorRTPredictor:
    """A TensorRT engine, cached per model, GPU, TensorRT version, precision and window shape under ``cache_dir``;
    later runs deserialise it (seconds) instead of building (minutes).

    The network is strongly typed (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``): every tensor keeps the type
    the ONNX graph gives it, so precision is chosen by the graph, ``model_fp16.onnx`` for fp16 and ``model.onnx``
    for fp32, not by builder flags (TensorRT 11 removed ``BuilderFlag.FP16`` and the other weak-typing flags; TensorRT
    10 has strong typing too). Calls used, present in TensorRT 10 and 11: ``Builder``, ``create_network``,
    ``OnnxParser``, ``create_builder_config``, optimization profile, ``build_serialized_network``,
    ``Runtime.deserialize_cuda_engine``, ``set_input_shape``/``set_tensor_address``/``execute_async_v3``. Input and
    output buffers are fp32 torch CUDA tensors.
    """

    def __init__(self, spec: ModelSpec, *, cache_dir: Path, sw_batch_size: int = 2, precision: str = "fp16",
                 reason: str = "requested") -> None:
        import tensorrt as trt
        import torch

        if not torch.cuda.is_available():
            raise ModelSpecError("TensorRT back end needs a CUDA GPU; none is available")
        self.spec, self.reason, self.sw_batch_size = spec, reason, sw_batch_size
        self.name = f"tensorrt-{precision}"
        self.logger = trt.Logger(trt.Logger.WARNING)
        shape = (sw_batch_size, len(spec.preprocessing.channels), *spec.preprocessing.patch_size)
        gpu = torch.cuda.get_device_name().replace(" ", "_")
        key = f"{spec.sha256[:16]}-{gpu}-trt{trt.__version__}-{precision}-{'x'.join(map(str, shape))}.engine"
        cache_dir = Path(cache_dir)
        engine_file = cache_dir / key
        if engine_file.is_file():
            logger.info("TensorRT engine from cache %s", engine_file)
            blob = engine_file.read_bytes()
        else:
            logger.info("building TensorRT %s engine for %s (once per GPU/TensorRT version)", precision, shape)
            blob = self._build(trt, spec.verified_onnx_file(precision), shape)
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = engine_file.with_suffix(".tmp")
            tmp.write_bytes(blob)
            tmp.replace(engine_file)
        self.engine = trt.Runtime(self.logger).deserialize_cuda_engine(blob)
        self.context = self.engine.create_execution_context()
        self.shape = shape

    def _build(self, trt, onnx_file: Path, shape: tuple) -> bytes:
        builder = trt.Builder(self.logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_file.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise ModelSpecError(f"TensorRT cannot parse {onnx_file}: {errors}")
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        single = (1, *shape[1:])
        profile.set_shape("image", single, shape, shape)
        config.add_optimization_profile(profile)
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise ModelSpecError(f"TensorRT failed to build an engine from {onnx_file}")
        return bytes(blob)

    def _forward(self, x):
        import torch

        x = x.contiguous().float()
        out = torch.empty((x.shape[0], len(self.spec.labels), *x.shape[2:]), device=x.device, dtype=torch.float32)
        self.context.set_input_shape("image", tuple(x.shape))
        self.context.set_tensor_address("image", x.data_ptr())
        self.context.set_tensor_address("logits", out.data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return out

    def predict(self, image: np.ndarray) -> np.ndarray:
        return sliding_window(image, self.spec, self._forward, device="cuda", sw_batch_size=self.sw_batch_size)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def make_predictor(spec: ModelSpec, *, backend: str = "auto", device: str = "auto",
                   cache_dir: Path | None = None, torchscript: TorchScriptOptions = TorchScriptOptions()
                   ) -> Predictor:
    """The predictor for a back-end name; ``auto`` picks as the module docstring says and records why.
    ``torchscript`` is passed to :class:`TorchScriptPredictor`."""
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

        return DeepbetPredictor(spec, device=device)
    cache_dir = Path(cache_dir or os.environ.get("GTV_ENGINE_CACHE", Path.home() / ".cache" / "gtv-engines"))
    if backend == "auto":
        if cuda and _importable("tensorrt") and spec.metadata.get("onnx_fp16_sha256"):
            return TensorRTPredictor(spec, cache_dir=cache_dir, reason="auto: CUDA GPU and TensorRT available")
        if cuda:
            why = "auto: CUDA GPU available, TensorRT " + ("has no ONNX model" if _importable("tensorrt")
                                                             else "not installed")
            return TorchScriptPredictor(spec, device="cuda", reason=why, options=torchscript)
        if CPU_PREFERENCE == "onnxruntime" and spec.onnx_sha256 and _importable("onnxruntime"):
            return OnnxRuntimePredictor(spec, reason="auto: no GPU; ONNX Runtime measured fastest on CPU")
        return TorchScriptPredictor(spec, device="cpu", reason="auto: no GPU; TorchScript measured fastest on CPU",
                                    options=torchscript)
    if backend == "torchscript":
        return TorchScriptPredictor(spec, device=device, options=torchscript)
    if backend == "onnxruntime":
        return OnnxRuntimePredictor(spec)
    return TensorRTPredictor(spec, cache_dir=cache_dir)


def load_models(models_root: Path | str, *, backend: str = "auto", device: str = "auto",
                torchscript: TorchScriptOptions = TorchScriptOptions(), spec: ModelSpec | None = None
                ) -> tuple[ModelSpec, Predictor, tuple[ModelSpec, Predictor] | None]:
    """The GTV bundle in ``models_root`` (the richest channel configuration, or ``spec`` when given) and its
    predictor, plus the brain-extraction bundle and predictor its metadata names (``preprocessing.brain_mask_model``),
    or None when it names none. Every hash is verified."""
    spec = spec or find_model(models_root)
    predictor = make_predictor(spec, backend=backend, device=device, torchscript=torchscript)
    brain = None
    if spec.preprocessing.brain_mask_model:
        brain_spec = find_model(models_root, spec.preprocessing.brain_mask_model, beside=spec.root)
        brain = (brain_spec, make_predictor(brain_spec, backend=backend, device=device, torchscript=torchscript))
    return spec, predictor, brain
