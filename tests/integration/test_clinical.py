"""The bundled models on the real, non-skull-stripped GBM studies, against their MaskTumor series.

Measured through the app's own code path (training.dicom_eval). The studies are post-operative: MaskTumor is the
enhancing tumour around a resection cavity, not a pre-operative GTV (see docs/accuracy.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from operators.core.model.predictor import load_models
from operators.core.selection.rules import load_rules
from training.dicom_eval import APP_RULES, evaluate_study, find_studies

pytestmark = pytest.mark.integration

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
#: The project's aim is a mean Dice of 0.70 against MaskTumor; the bundled models reach 0.556 (0.646, 0.649, 0.373),
#: so the aim is not reached (docs/accuracy.md; MaskTumor is post-operative enhancing tissue, and the GTV model draws
#: more than it around the resection site). This floor guards against regressions.
MIN_MEAN_DICE = 0.52
#: No GTV far from the tumour on a real head: the bundled models leave 0.00, 0.00 and 0.22 cm3 farther than 20 mm
#: from MaskTumor (the previous GTV model left 0.88, 0.02, 0.00 cm3 there, the one before it 1.12, 0.00, 1.96).
MAX_FAR_GTV_CM3 = 1.0
#: Most of the tumour inside the GTV: the bundled models cover 86, 93 and 81 % of MaskTumor (the previous GTV model
#: 81, 93 and 43 %: on PGBM-003 it held the enhancing ring and left out the fragments below it).
MIN_REFERENCE_COVERED = 0.80


@pytest.fixture(scope="module")
def results(shared_data):
    studies = find_studies(shared_data / "tcia-brain-tumor-progression")
    assert len(studies) == 3
    rules = load_rules(APP_RULES)
    models = load_models(REPO_MODELS, device="cpu")
    return {s.name: evaluate_study(s, models, rules) for s in studies}


def test_brain_mask_covers_the_tumour(results):
    for name, r in results.items():
        assert r["reference_in_brain_fraction"] >= 0.99, f"{name}: {r['reference_in_brain_fraction']:.4f}"


def test_no_gtv_outside_the_brain(results):
    for name, r in results.items():
        assert r["gtv_outside_brain_cm3"] == 0.0, name
        assert 1000 < r["brain_cm3"] < 2000, f"{name}: brain {r['brain_cm3']:.0f} cm3"
        # the region is the brain plus a 4 mm margin: a shell of a few hundred cm3
        assert 100 < r["brain_region_cm3"] - r["brain_cm3"] < 500, name


def test_gtv_overlaps_the_reference(results):
    dsc = [r["dsc"] for r in results.values()]
    assert np.mean(dsc) >= MIN_MEAN_DICE, f"Dice vs MaskTumor {np.round(dsc, 3).tolist()}"


def test_no_gtv_far_from_the_tumour(results):
    far = {name: round(r["gtv_farther_than_20mm_cm3"], 3) for name, r in results.items()}
    assert all(v < MAX_FAR_GTV_CM3 for v in far.values()), f"GTV cm3 farther than 20 mm from MaskTumor: {far}"


def test_gtv_covers_most_of_the_tumour(results):
    covered = {name: round(r["reference_covered_fraction"], 3) for name, r in results.items()}
    assert all(v >= MIN_REFERENCE_COVERED for v in covered.values()), f"MaskTumor inside the GTV: {covered}"


def test_dice_splits_into_coverage_and_precision(results):
    """Dice is the harmonic mean of the two fractions docs/accuracy.md reports per study."""
    for name, r in results.items():
        cover, inside = r["reference_covered_fraction"], r["gtv_in_reference_fraction"]
        assert 0 < cover <= 1 and 0 < inside <= 1, name
        assert abs(2 * cover * inside / (cover + inside) - r["dsc"]) < 1e-3, name


def test_where_the_dice_is_lost(results):
    for name, r in results.items():
        # the GTV inside MaskTumor is also within 10 mm of it; most of the GTV lies that near (docs/accuracy.md)
        assert r["gtv_in_reference_fraction"] <= r["gtv_within_10mm_fraction"] <= 1, name
        # GTV 0.2.0 with deepbet: 0.695, 0.885, 0.835 (0.1.1 with the 4 mm brain model: 0.78, 1.00, 0.82)
        assert r["gtv_within_10mm_fraction"] > 0.65, f"{name}: {r['gtv_within_10mm_fraction']:.3f}"
        assert 0 < r["dsc_vs_outline"] <= 1, name
