"""TensorRT back end: an fp16 engine built as a strongly typed network from ``models/model_fp16.onnx``, cached on
disk; works with TensorRT 10.x and 11.x."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from operators.core.errors import ModelSpecError
from operators.core.model.spec import ModelSpec
from operators.core.model.window import Mirroring, sliding_window

logger = logging.getLogger(__name__)


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
                 reason: str = "requested", mirror: Mirroring | None = None) -> None:
        import tensorrt as trt
        import torch

        if not torch.cuda.is_available():
            raise ModelSpecError("TensorRT back end needs a CUDA GPU; none is available")
        self.spec, self.reason, self.sw_batch_size, self.mirror = spec, reason, sw_batch_size, mirror
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
        return sliding_window(image, self.spec, self._forward, device="cuda", sw_batch_size=self.sw_batch_size,
                              mirror=self.mirror)
