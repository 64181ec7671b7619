"""The app's brain extraction on real heads and on skull-stripped input, as the graph runs it (the Brain OAR).

* Real heads (the TCIA post-operative studies): the bundled brain model's mask against HD-BET's, an independent
  brain extractor trained on other data (glioblastoma patients of the EORTC-26101 trial) by another method.
* Skull-stripped input (BraTS validation cases written as DICOM with pydicom, 5 mm slices every 6 mm and an oblique
  stack): the app recognises it and keeps the brain it came with.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from operators.core.model.predictor import load_models
from operators.core.selection.rules import load_rules
from operators.core.steps.brain import SHELL_MM, extract_brain, outer_shell_zero_fraction
from training.brain_check import compare_masks, hdbet_mask
from training.brats import find_cases
from training.brats_dicom import write_study
from training.dicom_eval import APP_RULES, find_studies, load_study, reference_mask, segment_study
from training.train import dice

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VALIDATION = json.loads((REPO / "training/splits/brats2018_34.json").read_text())["validation"]


@pytest.fixture(scope="module")
def models():
    return load_models(REPO / "models", device="cpu")


@pytest.fixture(scope="module")
def rules():
    return load_rules(APP_RULES)


@pytest.mark.slow
def test_brain_on_a_real_head_agrees_with_hd_bet(shared_data, models, rules):
    """PGBM-001 1992-04-02 (the sample study): Dice >= 0.95 against HD-BET's five-fold ensemble, at most 5 % of the
    Brain outside HD-BET's brain, all of MaskTumor inside the Brain, and no slice near the vertex where the Brain
    runs out over the bone (HD-BET finds brain on each slice where the Brain has more than 5 cm2)."""
    study = shared_data / "tcia-brain-tumor-progression/PGBM-001/1992-04-02"
    seg = segment_study(study, models, rules)
    assert not seg.brain.skull_stripped
    ours = seg.brain.tissue.array
    ref = hdbet_mask(seg.t1c, mode="accurate")
    m = compare_masks(ours, ref, seg.t1c)
    assert m["dsc"] >= 0.95, m
    assert m["outside_reference_fraction"] <= 0.05, m
    assert (seg.reference & ~ours).sum() == 0
    for s in m["vertex_slices"]:
        if s["brain_cm2"] > 5:
            assert s["reference_cm2"] > 0, s


def test_real_heads_are_not_taken_for_skull_stripped_input(shared_data, models, rules):
    """On every real head the shell outside deepbet's brain holds skull and scalp (measured 1.2-1.8 % zero), far
    below the bundle's limit, so the brain model's mask is what the app delivers."""
    _, _, (brain_spec, brain_predictor) = models
    limit = brain_spec.postprocessing.stripped_input_zero_fraction
    assert limit > 0.5
    for study in find_studies(shared_data / "tcia-brain-tumor-progression"):
        chosen, vols, _ = load_study(study, ("T1c",), rules)
        brain = extract_brain(vols[0], brain_spec, brain_predictor)
        assert not brain.skull_stripped, study
        assert outer_shell_zero_fraction(vols[0], brain.tissue.array) < 0.1, study
        tumour = reference_mask(chosen).array
        assert (tumour & ~brain.tissue.array).sum() == 0, study


@pytest.mark.parametrize("variant", ["thick", "oblique"])
def test_skull_stripped_input_keeps_its_brain(shared_data, models, rules, tmp_path, variant):
    """A skull-stripped BraTS validation case written as DICOM: the app sees no skull in the shell
    ``SHELL_MM`` outside deepbet's brain, takes the series' own non-zero region, and so matches the brain the input
    came with at Dice >= 0.97 (deepbet alone: 0.961-0.963 on the thick and oblique variants of this case)."""
    _, _, (brain_spec, brain_predictor) = models
    case = find_cases(shared_data / "brats2018", ("T1c", "FLAIR"), case_ids=["Brats18_2013_3_1"])[0]
    assert case.case_id in VALIDATION
    written, _ = write_study(case, tmp_path / "study", variant)
    _, vols, _ = load_study(tmp_path / "study", ("T1c",), rules)
    shutil.rmtree(tmp_path / "study")
    brain = extract_brain(vols[0], brain_spec, brain_predictor)
    assert brain.skull_stripped, f"shell {SHELL_MM} mm"
    stripped = written.array > 0
    if not written.grid.same_as(vols[0].grid):
        from operators.core.geometry import resample

        stripped = resample(written.with_array(stripped.astype(np.float32)), vols[0].grid,
                            interpolation="nearest").array > 0.5
    assert dice(brain.tissue.array, stripped) >= 0.97
