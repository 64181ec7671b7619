"""A second lesion the network is sure of is contoured, not dropped as a speck.

Brats18_CBICA_ATB_1 (a validation case) has two enhancing lesions 60 mm apart: 29 cm3 and, near the vertex, 4.6 cm3.
The bundled GTV model finds both; the rule that drops components under 30 % of the largest (small distant
components are mostly vessels and dura) would drop the second, and the confident-core rule
(``postprocessing.keep_core_mm3``) keeps it. Run through the app's steps, brain extraction included.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from operators.core.model.spec import find_model
from operators.core.pipeline import finish, segment
from training.brats import find_cases, read_tumour_core, read_volume
from training.evaluate import TUMOUR_CORE_LABELS, find_brain_model, make_predictor
from training.metrics import segmentation_metrics

pytestmark = pytest.mark.integration

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


@pytest.fixture(scope="module")
def atb(shared_data):
    spec = find_model(REPO_MODELS)
    case = find_cases(shared_data / "brats2018", spec.preprocessing.channels, case_ids=["Brats18_CBICA_ATB_1"])[0]
    result = segment([read_volume(p) for p in case.channel_paths], spec, make_predictor(spec, device="cpu"),
                     brain_model=find_brain_model(spec, "cpu"))
    lesions, n = ndimage.label(read_tumour_core(case, TUMOUR_CORE_LABELS).array)
    sizes = np.bincount(lesions.ravel())[1:]
    first, second = (np.argsort(sizes)[::-1][:2] + 1)
    return spec, case, result, lesions == first, lesions == second


def test_both_lesions_are_contoured(atb):
    spec, _, result, first, second = atb
    assert spec.postprocessing.keep_core_mm3 > 0
    gtv = result.gtv
    assert ndimage.label(gtv, structure=np.ones((3, 3, 3), bool))[1] == 2
    assert (gtv & first).sum() / first.sum() > 0.7
    assert (gtv & second).sum() / second.sum() > 0.3
    assert result.results[0].kept_components == 1


def test_the_second_lesion_sets_the_distance_figures(atb):
    """With the second lesion found, HD95 is the contour's accuracy (5.4 mm), not the distance to a missed lesion."""
    _, _, result, first, second = atb
    metrics = segmentation_metrics(result.gtv, first | second, result.channels[0].grid.spacing_zyx)
    assert metrics["hd95_mm"] < 10.0 and metrics["dsc"] > 0.8


def test_without_the_core_rule_the_second_lesion_is_dropped(atb):
    spec, _, result, _, second = atb
    post = dataclasses.replace(spec.postprocessing, keep_core_mm3=0.0)
    fraction_only = dataclasses.replace(spec, postprocessing=post)
    results, _ = finish(result.channels, result.probabilities, fraction_only, result.brain)
    assert not (results[0].mask.array & second).any()
    assert results[0].removed_components >= 1


def test_a_gtv_in_two_parts_is_flagged_for_review(atb):
    _, _, result, _, _ = atb
    assert result.quality.verdict == "review"
    assert "GTV_COMPONENTS" in [f.code for f in result.quality.flags]
