"""The GPU back ends against TorchScript fp32 on the CPU, on a real BraTS case with the bundled GTV model (
masks agree with Dice >= 0.99, probabilities within the tolerances below).

They run only where a CUDA GPU (and, for TensorRT, the ``tensorrt`` package) exists: on a GPU machine through
``tools/gpu/check.sh``, and in the MAP's TensorRT base image on a GPU host. Elsewhere they are skipped, not passed.
"""

import numpy as np
import pytest
import torch

from operators.core.model.predictor import TensorRTPredictor, TorchScriptOptions, TorchScriptPredictor, make_predictor
from training.train import dice

#: fp16 arithmetic against fp32: the masks must agree almost everywhere, the probabilities closely on average and
#: everywhere within a few hundredths (near the 0.5 threshold a small logit error moves the probability most).
MIN_MASK_DICE = 0.99
MAX_MEAN_ABS_PROBABILITY = 1e-3
MAX_ABS_PROBABILITY = 0.05

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def tensorrt_missing() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorrt") is None


@pytest.fixture(scope="module")
def reference(gtv_model_input):
    spec, image = gtv_model_input
    return TorchScriptPredictor(spec, device="cpu").predict(image)


def assert_agrees(probabilities: np.ndarray, reference: np.ndarray) -> None:
    assert (reference > 0.5).sum() > 1000  # the case has a tumour core the model finds
    mask_dice = dice(probabilities > 0.5, reference > 0.5)
    diff = np.abs(probabilities - reference)
    assert mask_dice >= MIN_MASK_DICE, f"mask Dice {mask_dice:.4f}"
    assert diff.mean() <= MAX_MEAN_ABS_PROBABILITY, f"mean |dp| {diff.mean():.2e}"
    assert diff.max() <= MAX_ABS_PROBABILITY, f"max |dp| {diff.max():.3f}"


@pytest.mark.gpu
@needs_cuda
def test_torchscript_cuda_fp16_matches_cpu_fp32(gtv_model_input, reference):
    spec, image = gtv_model_input
    predictor = TorchScriptPredictor(spec, device="cuda")
    assert predictor.name == "torchscript-cuda-fp16"
    assert_agrees(predictor.predict(image), reference)
    fp32 = TorchScriptPredictor(spec, device="cuda", options=TorchScriptOptions(cuda_fp16=False))
    np.testing.assert_allclose(fp32.predict(image), reference, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.tensorrt
@needs_cuda
@pytest.mark.skipif(tensorrt_missing(), reason="needs TensorRT (in the MAP's base image, not on the dev machines)")
def test_tensorrt_fp16_matches_torchscript_fp32_and_its_engine_is_cached(gtv_model_input, reference, tmp_path):
    spec, image = gtv_model_input
    built = TensorRTPredictor(spec, cache_dir=tmp_path)
    engines = list(tmp_path.glob("*.engine"))
    assert len(engines) == 1 and spec.sha256[:16] in engines[0].name
    first = built.predict(image)
    assert_agrees(first, reference)
    stamp = engines[0].stat().st_mtime_ns
    again = TensorRTPredictor(spec, cache_dir=tmp_path)  # deserialised from the cache, not rebuilt
    assert engines[0].stat().st_mtime_ns == stamp
    np.testing.assert_allclose(again.predict(image), first, atol=1e-5)
    chosen = make_predictor(spec, backend="auto", cache_dir=tmp_path)
    assert chosen.name == "tensorrt-fp16" and "TensorRT" in chosen.reason
