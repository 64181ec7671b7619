"""tools/experiments/components.py (an experiment): the parts of the bundled GTV model's thresholded output on a real
case with two lesions, before the size rules, as the confident-core rule was chosen from them; and its pictures."""

import json
from pathlib import Path

import numpy as np
from PIL import Image

from operators.core.model.spec import find_model
from tools.experiments.components import brats_parts, main
from training.brats import find_cases
from training.evaluate import make_predictor

REPO_MODELS = Path(__file__).resolve().parents[3] / "models"


def test_both_lesions_are_parts_and_only_the_core_rule_keeps_the_second(shared_data):
    spec = find_model(REPO_MODELS)
    case = find_cases(shared_data / "brats2018", spec.preprocessing.channels, case_ids=["Brats18_CBICA_ATB_1"])[0]
    rows, result, reference = brats_parts(spec, make_predictor(spec, device="cpu"), case)
    first, second = rows[:2]
    assert first["on_reference"] and second["on_reference"]
    assert first["fraction_of_largest"] == 1.0 and first["mm_from_largest"] == 0.0
    post = spec.postprocessing
    # under the fraction rule's limit, far from the first lesion, yet with a confident core large enough to be kept
    assert second["fraction_of_largest"] < post.min_component_fraction
    assert second["mm_from_largest"] > 20.0
    assert second["core_cm3"] * 1000 >= post.keep_core_mm3
    assert second["core_cm3"] <= second["cm3"] and second["max_probability"] > post.core_threshold


def test_the_figure_draws_the_gtv_and_the_core_on_every_input(shared_data, tmp_path):
    """``--figure`` on a real case: one picture per input sequence (T1c under the name given, FLAIR beside it), each
    with the GTV's outline in red and the tumour core's in green."""
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [], "validation": ["Brats18_TCIA10_637_1"]}))
    png = tmp_path / "case.png"
    assert main(["--models", str(REPO_MODELS), "--data", str(shared_data / "brats2018"), "--split", str(split),
                 "--figure", "Brats18_TCIA10_637_1", str(png)]) == 0
    for path in (png, tmp_path / "case_flair.png"):
        rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
        red = (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
        green = (rgb[..., 1] > 200) & (rgb[..., 0] < 60) & (rgb[..., 2] < 60)
        assert red.sum() > 100 and green.sum() > 100, path
    assert not np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(tmp_path / "case_flair.png")))
