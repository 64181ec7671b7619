"""training.dicom_eval.outline: a rim's cavity is filled, slice by slice, on the studies' anisotropic grid."""

import numpy as np

from training.dicom_eval import outline

SPACING = (6.5, 0.6875, 0.6875)  # the TCIA studies' T1post grid (z, y, x), mm


def test_a_rim_with_a_gap_becomes_its_filled_outline_on_its_own_slices_only():
    yy, xx = np.mgrid[:80, :80]
    r = np.hypot(yy - 40, xx - 40)
    rim = (r >= 12) & (r <= 16)
    rim[38:42, 52:58] = False  # a 2.75 mm break in the rim: the 2 mm closing bridges it
    mask = np.zeros((3, 80, 80), bool)
    mask[1] = rim
    out = outline(mask, SPACING)
    assert not out[0].any() and not out[2].any()  # no spread across 6.5 mm slices
    assert out[1][r < 12].all()  # the cavity is filled: only possible once the gap is bridged
    assert not out[1][r > 17.5].any()  # the closing does not grow the outline
    assert (out >= mask).all()


def test_a_mask_without_holes_is_unchanged():
    mask = np.zeros((2, 40, 40), bool)
    mask[0, 10:30, 12:25] = True
    np.testing.assert_array_equal(outline(mask, SPACING), mask)
