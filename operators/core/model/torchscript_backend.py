"""TorchScript back end: ``models/model.ts`` on CPU, or CUDA with fp16 autocast.

TorchScript's profiling optimiser is off by default (``jit_optimize``): the app runs once per study, and the
optimiser's first calls compile fused kernels (NVRTC on CUDA) for a steady-state gain measured at none (H200: 25.8 ms
optimised TorchScript fp16 vs 24.8 ms eager on the reference grid; 2-core CPU: the same cold-process time either
way, ``tools/benchmarks/bench.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from operators.core.errors import ModelSpecError
from operators.core.model.spec import ModelSpec
from operators.core.model.window import Mirroring, sliding_window


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
                 options: TorchScriptOptions = TorchScriptOptions(), mirror: Mirroring | None = None) -> None:
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.fp16 = options.cuda_fp16 and self.device.type == "cuda"
        self.name = f"torchscript-{self.device.type}" + ("-fp16" if self.fp16 else "")
        self.reason = reason
        self.spec = spec
        self.options = options
        self.mirror = mirror
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
        return sliding_window(image, self.spec, self._forward, device=self.device, mirror=self.mirror)
