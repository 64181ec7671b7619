"""Brain-mask post-processing: largest component kept, enclosed holes filled (also slice by slice); the region is
the tissue grown by the model's margin."""

import json

import numpy as np
import torch

from operators.core.geometry import Grid, Volume
from operators.core.model.predictor import TorchScriptPredictor
from operators.core.model.schema import Postprocessing, Preprocessing, app_metadata
from operators.core.model.spec import METADATA_PATH, MODEL_PATH, load_model_spec, sha256_of
from operators.core.steps.brain import extract_brain


class Threshold(torch.nn.Module):
    """Logit = 8 * (x - 0.5): 'brain' wherever the normalised image exceeds half an SD above its mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 8.0 * (x[:, :1] - 0.5)


def bundle(root, **post):
    (root / MODEL_PATH).parent.mkdir(parents=True)
    (root / METADATA_PATH).parent.mkdir(parents=True)
    torch.jit.script(Threshold()).save(str(root / MODEL_PATH))
    post = {"dilate_mm": 4.0, "largest_component": True, "fill_holes": True, "fill_holes_slicewise": True} | post
    (root / METADATA_PATH).write_text(json.dumps(app_metadata(
        name="threshold", version="0", labels=["Brain"], sha256=sha256_of(root / MODEL_PATH),
        preprocessing=Preprocessing(channels=("T1c",), patch_size=(32, 32, 32)),
        postprocessing=Postprocessing(**post))))
    return load_model_spec(root)


def test_largest_component_kept_and_holes_filled(tmp_path):
    spec = bundle(tmp_path / "b")
    grid = Grid.from_parts((40, 48, 48), origin=np.zeros(3), spacing=np.array([2.0, 2.0, 2.0]), direction=np.eye(3))
    image = np.full(grid.shape, 1.0, np.float32)  # dim background (still non-zero: a head in air)
    image[8:32, 8:40, 8:40] = 10.0  # the 'brain'
    image[16:24, 20:28, 20:28] = 1.0  # a dark enclosed 'cavity' inside it
    image[2:5, 2:5, 2:5] = 10.0  # a bright speck elsewhere (27 voxels)
    brain = extract_brain(Volume(image, grid), spec, TorchScriptPredictor(spec, device="cpu"))
    mask = brain.tissue.array
    assert not mask[2:5, 2:5, 2:5].any()  # the speck is not the largest component
    assert mask[16:24, 20:28, 20:28].all()  # the cavity is filled
    # the brain block itself is covered up to a voxel of interpolation at its faces
    assert mask[9:31, 9:39, 9:39].all()
    assert mask.sum() <= (26 * 34 * 34)
    # the region is the tissue plus 4 mm (2 voxels at 2 mm) on every side, and no more
    region = brain.region.array
    assert region[mask].all()
    assert region[7:33, 7:41, 7:41].all() and not region[:4].any() and not region[:, :, :5].any()


def test_post_processing_comes_from_the_metadata(tmp_path):
    """With largest_component and hole filling off in the bundle's metadata, the speck and the cavity stay."""
    spec = bundle(tmp_path / "b", largest_component=False, fill_holes=False, fill_holes_slicewise=False)
    grid = Grid.from_parts((40, 48, 48), origin=np.zeros(3), spacing=np.array([2.0, 2.0, 2.0]), direction=np.eye(3))
    image = np.full(grid.shape, 1.0, np.float32)
    image[8:32, 8:40, 8:40] = 10.0
    image[16:24, 20:28, 20:28] = 1.0
    image[2:5, 2:5, 2:5] = 10.0
    mask = extract_brain(Volume(image, grid), spec, TorchScriptPredictor(spec, device="cpu")).tissue.array
    assert mask[3, 3, 3] and not mask[20, 24, 24]
