"""Network-only inference benchmark on the issue's reference grid (240 x 240 x 155), printed as JSON.

    python -m tools.benchmarks.infer_bench [--device cuda] [--repeat 10] [--variants eager,fp16,torchscript,compile]
                                [--out infer.json]

Two networks:

* ``reference``: the 4.7 M-parameter SegResNet (16 filters) over the whole 1 mm grid of a BraTS-sized volume
  (2 channels, 155 x 240 x 240), sliding window of 128^3 patches, overlap 0.25, Gaussian blending.
* ``bundle``: the app's GTV model from ``models/`` on the grid the app really feeds it for such a volume (the same
  extent resampled to the model's spacing, e.g. 78 x 120 x 120 at 2 mm), with the bundle's patch and overlap.

Variants: ``eager`` (fp32), ``fp16`` (eager under fp16 autocast), ``torchscript`` (the bundle's model.ts under fp16
autocast: what the app's ``torchscript`` back end runs on CUDA), ``compile`` (``torch.compile`` of the eager
network under fp16 autocast; compile time reported separately). Each figure is the median of ``--repeat`` timed
runs after two warm-ups, synchronised on the GPU. Weights of ``reference`` are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from tools.benchmarks.bench import emit_json

REPO = Path(__file__).resolve().parents[2]

REFERENCE_GRID = (155, 240, 240)  # (Z, Y, X), 1 mm: BraTS
REFERENCE_PATCH = (128, 128, 128)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_runs(fn, device: torch.device, repeat: int) -> dict:
    for _ in range(2):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return {"ms": round(1000 * statistics.median(times), 1), "min_ms": round(1000 * min(times), 1)}


def window_fn(net, x, *, patch, overlap: float, fp16: bool, device: torch.device):
    from monai.inferers import sliding_window_inference

    def run():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.float16,
                                                    enabled=fp16 and device.type == "cuda"):
            out = sliding_window_inference(x, roi_size=patch, sw_batch_size=2, predictor=net, overlap=overlap,
                                           mode="gaussian")
            return torch.sigmoid(out.float())
    return run


def bench_network(name: str, eager: torch.nn.Module, script: torch.nn.Module | None, x: torch.Tensor, *, patch,
                  overlap: float, device: torch.device, variants: list[str], repeat: int) -> dict:
    result = {"input_shape": list(x.shape[1:]), "patch": list(patch), "overlap": overlap,
              "parameters": int(sum(p.numel() for p in eager.parameters()))}
    for v in variants:
        try:
            if v == "eager":
                result[v] = time_runs(window_fn(eager, x, patch=patch, overlap=overlap, fp16=False, device=device),
                                      device, repeat)
            elif v == "fp16":
                result[v] = time_runs(window_fn(eager, x, patch=patch, overlap=overlap, fp16=True, device=device),
                                      device, repeat)
            elif v == "torchscript" and script is not None:
                result[v] = time_runs(window_fn(script, x, patch=patch, overlap=overlap, fp16=True, device=device),
                                      device, repeat)
            elif v == "compile":
                compiled = torch.compile(eager)
                t0 = time.perf_counter()
                window_fn(compiled, x, patch=patch, overlap=overlap, fp16=True, device=device)()
                _sync(device)
                compile_s = time.perf_counter() - t0
                result[v] = {**time_runs(window_fn(compiled, x, patch=patch, overlap=overlap, fp16=True,
                                                   device=device), device, repeat),
                             "first_call_s": round(compile_s, 1)}
        except Exception as e:  # a variant that fails on this machine is reported, not fatal
            result[v] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        print(f"{name} {v}: {result.get(v)}", file=sys.stderr, flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--variants", default="eager,fp16,torchscript,compile")
    p.add_argument("--networks", default="bundle,reference")
    p.add_argument("--models", type=Path, default=REPO / "models")
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    from monai.networks.nets import SegResNet

    from operators.core.model.spec import find_model

    device = torch.device(a.device)
    variants = [v for v in a.variants.split(",") if v]
    torch.backends.cudnn.benchmark = True
    rng = np.random.default_rng(0)
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "reference_grid_zyx": list(REFERENCE_GRID), "networks": {}}
    nets = a.networks.split(",")
    if "bundle" in nets:
        spec = find_model(a.models)
        pre = spec.preprocessing
        # the app's model grid for a 1 mm 240x240x155 volume: the same extent at the model's spacing
        shape = tuple(int(np.ceil(n * 1.0 / s)) for n, s in zip(REFERENCE_GRID, pre.spacing_mm[::-1]))
        x = torch.from_numpy(rng.standard_normal((1, len(pre.channels), *shape), dtype=np.float32)).to(device)
        script = torch.jit.load(str(spec.model_file), map_location=device).eval()
        meta = json.loads((spec.root / "configs" / "metadata.json").read_text())
        arch = meta["network"]
        eager = SegResNet(spatial_dims=3, in_channels=len(pre.channels), out_channels=len(spec.labels),
                          init_filters=arch["init_filters"], blocks_down=tuple(arch["blocks_down"]),
                          blocks_up=tuple(arch["blocks_up"]))
        eager.load_state_dict(script.state_dict())
        eager = eager.to(device).eval()
        result["networks"]["bundle"] = {"model": spec.name, "spacing_mm": list(pre.spacing_mm),
                                        **bench_network("bundle", eager, script, x, patch=pre.patch_size,
                                                        overlap=pre.overlap, device=device, variants=variants,
                                                        repeat=a.repeat)}
    if "reference" in nets:
        x = torch.from_numpy(rng.standard_normal((1, 2, *REFERENCE_GRID), dtype=np.float32)).to(device)
        eager = SegResNet(spatial_dims=3, in_channels=2, out_channels=1, init_filters=16,
                          blocks_down=(1, 2, 2, 4), blocks_up=(1, 1, 1)).to(device).eval()
        script = torch.jit.script(eager)
        result["networks"]["reference"] = bench_network("reference", eager, script, x, patch=REFERENCE_PATCH,
                                                        overlap=0.25, device=device, variants=variants,
                                                        repeat=a.repeat)
    emit_json(result, a.out)


if __name__ == "__main__":
    main()
