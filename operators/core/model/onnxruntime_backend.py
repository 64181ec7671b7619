"""ONNX Runtime back end: ``models/model.onnx`` with the CPU provider."""

from __future__ import annotations

import os

import numpy as np

from operators.core.model.spec import ModelSpec
from operators.core.model.window import Mirroring, sliding_window


class OnnxRuntimePredictor:
    """``models/model.onnx`` (hash checked here, before loading) with ONNX Runtime's CPU provider; with
    ``precision="fp16"`` the mixed-precision ``models/model_fp16.onnx`` that TensorRT builds its fp16 engine from
    (the CPU's check of that graph, not a faster CPU path)."""

    def __init__(self, spec: ModelSpec, *, threads: int | None = None, reason: str = "requested",
                 precision: str = "fp32", mirror: Mirroring | None = None) -> None:
        import onnxruntime as ort

        path = spec.verified_onnx_file(precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.spec, self.reason, self.mirror = spec, reason, mirror
        self.name = "onnxruntime-cpu" + ("" if precision == "fp32" else f"-{precision}")

    def _forward(self, x):
        import torch

        return torch.from_numpy(self.session.run(None, {"image": x.numpy()})[0])

    def predict(self, image: np.ndarray) -> np.ndarray:
        return sliding_window(image, self.spec, self._forward, mirror=self.mirror)
