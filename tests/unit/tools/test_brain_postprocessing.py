"""tools/experiments/brain_postprocessing.py (an experiment): on a real head, a higher threshold only takes voxels
away from the Brain, and the as-shipped variant is the app's own Brain."""

from pathlib import Path

import numpy as np

from operators.core.model.predictor import load_models
from operators.core.selection.rules import load_rules
from operators.core.steps.brain import brain_probability
from tools.experiments.brain_postprocessing import variant_masks
from training.dicom_eval import APP_RULES, segment_study

REPO = Path(__file__).resolve().parents[3]


def test_variants_on_a_real_head(shared_data):
    loaded = load_models(REPO / "models", device="cpu")
    brain_spec, brain_predictor = loaded[2]
    seg = segment_study(shared_data / "tcia-brain-tumor-progression" / "PGBM-001" / "1992-04-02", loaded,
                        load_rules(APP_RULES))
    masks = variant_masks(brain_probability(seg.t1c, brain_spec, brain_predictor), brain_spec.postprocessing)
    assert np.array_equal(masks["as shipped"], seg.brain.tissue.array)
    lo, mid, hi = masks["as shipped"], masks["threshold 0.6"], masks["threshold 0.7"]
    assert hi.sum() < mid.sum() < lo.sum()
    assert not (hi & ~lo).any()  # nested: the higher threshold only removes voxels
    assert 0.98 < hi.sum() / lo.sum()  # deepbet is sure of nearly all of its brain
