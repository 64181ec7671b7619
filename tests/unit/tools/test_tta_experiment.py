"""tools/experiments/tta_experiment.py (an experiment): mirror averaging with the bundled GTV model on a real BraTS case
is exactly mirror-equivariant, which the network alone is not, and it leaves the brain-extraction model alone."""

from pathlib import Path

import numpy as np
import pytest
import torch

from operators.core.model.predictor import TorchScriptPredictor
from operators.core.model.spec import find_model
from tools.experiments.tta_experiment import AXES, install, mirrored

MODELS = Path(__file__).resolve().parents[3] / "models"


@pytest.fixture(scope="module")
def gtv_window(gtv_model_input):
    """The bundled GTV model and a 64^3 window of its input centred on the tumour of a real validation case."""
    spec, image = gtv_model_input
    predictor = TorchScriptPredictor(spec, device="cpu")
    centre = np.argwhere(predictor.predict(image)[0] > 0.5).mean(axis=0).astype(int)
    lo = [int(np.clip(c - 32, 0, n - 64)) for c, n in zip(centre, image.shape[1:])]
    window = image[:, lo[0]:lo[0] + 64, lo[1]:lo[1] + 64, lo[2]:lo[2] + 64]
    return spec, predictor, torch.from_numpy(np.ascontiguousarray(window))[None]


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_mirror_average_is_equivariant_and_the_network_is_not(gtv_window, axis):
    _, predictor, x = gtv_window
    d = AXES[axis]
    tta = mirrored(predictor._forward, [AXES[a] for a in "xyz"], "prob")
    def gap(f):  # largest probability change when the input is mirrored (and the output mirrored back)
        return (torch.sigmoid(torch.flip(f(torch.flip(x, (d,))), (d,))) - torch.sigmoid(f(x))).abs().max().item()

    with torch.inference_mode():
        assert (torch.sigmoid(tta(x)) > 0.5).sum() > 1000  # the window holds tumour
        assert gap(predictor._forward) > 0.01  # the network alone is not mirror-symmetric
        assert gap(tta) < 1e-5


def test_install_touches_the_gtv_model_only(gtv_window):
    spec, predictor, x = gtv_window
    brain_spec = find_model(MODELS, "brain_extraction_segresnet")
    brain = TorchScriptPredictor(brain_spec, device="cpu")
    head = np.zeros((1, 80, 80, 80), np.float32)
    head[0, 10:70, 15:65, 20:60] = 1.0  # any input: only whether the output changes matters
    image = x[0].numpy()
    before_gtv, before_brain = predictor.predict(image), brain.predict(head)
    restore = install([AXES["x"]])
    try:
        after_gtv, after_brain = predictor.predict(image), brain.predict(head)
    finally:
        restore()
    np.testing.assert_array_equal(after_brain, before_brain)
    assert np.abs(after_gtv - before_gtv).max() > 0.01
    np.testing.assert_array_equal(predictor.predict(image), before_gtv)  # restored
