"""Inference back ends behind one small interface.

A :class:`Predictor` turns a normalised ``(C, Z, Y, X)`` float32 array on the model grid into ``(L, Z, Y, X)``
float32 probabilities, one channel per label. The sliding window, the back end (TorchScript now; TensorRT and
others plug in here) and the device are hidden behind it. Back-end libraries are imported lazily.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from operators.core.errors import ModelSpecError
from operators.core.model_spec import ModelSpec

logger = logging.getLogger(__name__)


class Predictor(Protocol):
    """Array in, probabilities out."""

    name: str

    def predict(self, image: np.ndarray) -> np.ndarray:
        """``(C, Z, Y, X)`` float32 normalised image -> ``(L, Z, Y, X)`` float32 probabilities in [0, 1]."""
        ...


class TorchScriptPredictor:
    """Sliding-window inference of the bundle's TorchScript network (logits out, sigmoid applied here).

    Args:
        spec: verified model spec (its hash was checked when it was loaded).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
        sw_batch_size: windows per forward pass.
    """

    def __init__(self, spec: ModelSpec, *, device: str = "auto", sw_batch_size: int = 2) -> None:
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.name = f"torchscript-{self.device.type}"
        self.spec = spec
        self.sw_batch_size = sw_batch_size
        try:
            self.module = torch.jit.load(str(spec.model_file), map_location=self.device).eval()
        except RuntimeError as e:
            raise ModelSpecError(f"model file {spec.model_file} is not a loadable TorchScript module: {e}") from e

    def predict(self, image: np.ndarray) -> np.ndarray:
        import torch
        from monai.inferers import sliding_window_inference

        pre = self.spec.preprocessing
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None].to(self.device)
        with torch.inference_mode():
            logits = sliding_window_inference(
                x,
                roi_size=pre.patch_size,
                sw_batch_size=self.sw_batch_size,
                predictor=self.module,
                overlap=pre.overlap,
                mode="gaussian",
                padding_mode="constant",
                cval=float(pre.normalisation.outside),
            )
            probs = torch.sigmoid(logits.float())[0]
        return probs.cpu().numpy()


def make_predictor(spec: ModelSpec, *, backend: str = "torchscript", device: str = "auto") -> Predictor:
    """The predictor for a back-end name."""
    if backend == "torchscript":
        return TorchScriptPredictor(spec, device=device)
    raise ModelSpecError(f"inference back end {backend!r} is not available; choose from ['torchscript']")
