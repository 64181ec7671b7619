"""tools/experiments/enhancing_part_experiment.py (an experiment): on a real BraTS training case, the bright part of the
true tumour core is its enhancing tumour, and the threshold curve peaks inside the searched range."""

import numpy as np

from tools.experiments.enhancing_part_experiment import THRESHOLDS, brats_table, enhancing_part, zscore_inside


def test_zscore_inside_the_mask():
    rng = np.random.default_rng(0)
    image = rng.normal(300.0, 40.0, (4, 20, 20)).astype(np.float32)
    mask = np.zeros(image.shape, bool)
    mask[:, 5:15, 5:15] = True
    z = zscore_inside(image, mask)
    assert abs(z[mask].mean()) < 1e-4 and abs(z[mask].std() - 1) < 1e-4
    part = enhancing_part(mask, image, mask, 1.0)
    assert part.sum() == (z[mask] > 1.0).sum() and not part[~mask].any()


def test_enhancing_part_of_the_true_core_on_a_real_case(shared_data):
    table = brats_table(shared_data / "brats2018", ["Brats18_TCIA01_378_1"])  # a high-grade training case
    best = max(THRESHOLDS, key=table.get)
    assert THRESHOLDS[0] < best < THRESHOLDS[-1]  # brighter than brain, but not only the brightest voxels
    assert table[best] > 0.6
    assert max(table[THRESHOLDS[0]], table[THRESHOLDS[-1]]) < table[best] - 0.1
