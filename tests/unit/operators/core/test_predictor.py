"""The TorchScript back end as the app runs it: the profiling optimiser off by default, and on or off the same
probabilities from the bundled GTV model on a real BraTS case."""

from pathlib import Path

import numpy as np
import torch

from operators.core.model.predictor import TorchScriptOptions, TorchScriptPredictor, load_models

REPO_MODELS = Path(__file__).resolve().parents[4] / "models"


def executed_graph_is_optimised() -> bool:
    """The profiling optimiser inlines the submodules' methods into one graph; without it they stay calls."""
    return "prim::CallMethod" not in str(torch.jit.last_executed_optimized_graph())


def test_optimiser_off_by_default_and_outputs_equal_with_it_on(gtv_model_input):
    spec, image = gtv_model_input
    default = load_models(REPO_MODELS, backend="torchscript", device="cpu")[1]
    assert default.options == TorchScriptOptions(jit_optimize=False, cuda_fp16=True)
    off = [default.predict(image) for _ in range(2)]  # the optimiser would act from the second call
    assert not executed_graph_is_optimised()
    on_predictor = TorchScriptPredictor(spec, device="cpu", options=TorchScriptOptions(jit_optimize=True))
    on = [on_predictor.predict(image) for _ in range(2)]
    assert executed_graph_is_optimised()
    # the switch is the predictor's own, not left behind for other TorchScript code in the process
    assert torch._C._get_graph_executor_optimize() is True
    for a, b in zip(off, on):
        np.testing.assert_allclose(a, b, atol=1e-5)
    mask = off[0] > 0.5
    assert mask.sum() > 1000  # the case has a tumour core the model finds
    assert (mask == (on[0] > 0.5)).all()


def test_onnxruntime_matches_torchscript_fp32_for_the_bundled_gtv_model(gtv_model_input):
    """The bundle's ONNX graph (which the TensorRT back end builds its engine from) against its TorchScript."""
    from operators.core.model.predictor import OnnxRuntimePredictor

    spec, image = gtv_model_input
    ref = TorchScriptPredictor(spec, device="cpu").predict(image)
    ort = OnnxRuntimePredictor(spec).predict(image)
    # measured: largest difference 4.3e-4 (float32 sums in another order over 1.2 M parameters), mean far smaller
    assert np.abs(ort - ref).max() < 1e-3 and np.abs(ort - ref).mean() < 1e-6
    a, b = ref > 0.5, ort > 0.5
    assert a.sum() > 1000
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) >= 0.99
