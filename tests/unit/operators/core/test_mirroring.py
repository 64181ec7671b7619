"""Test-time mirroring, a predictor option: with the bundled GTV model on a real BraTS case the mirrored prediction
is exactly mirror-equivariant, which the network alone is not; ``load_models`` applies it to the GTV model only."""

from pathlib import Path

import numpy as np
import pytest
import torch

from operators.core.errors import ModelSpecError
from operators.core.model.predictor import Mirroring, TorchScriptPredictor, load_models
from operators.core.model.window import AXIS_DIMS

MODELS = Path(__file__).resolve().parents[4] / "models"


@pytest.fixture(scope="module")
def gtv_window(gtv_model_input):
    """The bundled GTV model and a 64^3 window of its input centred on the tumour of a real validation case."""
    spec, image = gtv_model_input
    predictor = TorchScriptPredictor(spec, device="cpu")
    centre = np.argwhere(predictor.predict(image)[0] > 0.5).mean(axis=0).astype(int)
    lo = [int(np.clip(c - 32, 0, n - 64)) for c, n in zip(centre, image.shape[1:])]
    window = image[:, lo[0]:lo[0] + 64, lo[1]:lo[1] + 64, lo[2]:lo[2] + 64]
    return spec, predictor, np.ascontiguousarray(window)


@pytest.mark.parametrize("axis", ["x", "y", "z"])
def test_mirrored_window_is_equivariant_and_the_network_is_not(gtv_window, axis):
    _, predictor, window = gtv_window
    x, d = torch.from_numpy(window)[None], AXIS_DIMS[axis]
    tta = Mirroring("xyz").wrap(predictor._forward)

    def gap(f):  # largest probability change when the input is mirrored (and the output mirrored back)
        return (torch.sigmoid(torch.flip(f(torch.flip(x, (d,))), (d,))) - torch.sigmoid(f(x))).abs().max().item()

    with torch.inference_mode():
        assert (torch.sigmoid(tta(x)) > 0.5).sum() > 1000  # the window holds tumour
        assert gap(predictor._forward) > 0.01  # the network alone is not mirror-symmetric
        assert gap(tta) < 1e-5


def test_predictor_option_changes_the_prediction_a_little(gtv_window):
    spec, plain, window = gtv_window
    p = TorchScriptPredictor(spec, device="cpu", mirror=Mirroring("x")).predict(window)[0] > 0.5
    q = plain.predict(window)[0] > 0.5
    assert p.sum() > 1000 and (p != q).any()
    assert 2 * (p & q).sum() / (p.sum() + q.sum()) > 0.9  # the same tumour


def test_load_models_mirrors_the_gtv_model_only():
    spec, gtv, brain = load_models(MODELS / "glioblastoma_gtv", device="cpu", mirror=Mirroring("xyz"))
    assert gtv.mirror == Mirroring("xyz")
    assert brain is not None and getattr(brain[1], "mirror", None) is None


@pytest.mark.parametrize("axes, message", [("xw", "distinct letters among x, y, z; found 'xw'"),
                                           ("xx", "distinct letters")])
def test_bad_axes_are_named(axes, message):
    with pytest.raises(ModelSpecError, match=message):
        Mirroring(axes)
