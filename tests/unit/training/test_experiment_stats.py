"""Convergence epoch and paired tests with hand-computed values."""

import numpy as np
import pytest
from scipy import stats

from training.experiment import convergence_epoch, paired_tests, smoothed
from training.train import adapt_input_channels


def test_smoothed_is_a_trailing_mean():
    np.testing.assert_allclose(smoothed([0.0, 0.3, 0.6, 0.9]), [0.0, 0.15, 0.3, 0.6])


def test_convergence_epoch():
    curve = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9]
    # trailing means: .1 .3 .4667 .7333 .8667 .9 ; 95 % of best (.9) = .855 -> epoch 5
    assert convergence_epoch(curve) == 5
    assert convergence_epoch(curve, threshold=0.4) == 3
    assert convergence_epoch(curve, threshold=0.99) is None


def test_paired_tests_match_scipy():
    a = [0.91, 0.88, 0.93, 0.85, 0.9, 0.87]
    b = [0.89, 0.86, 0.9, 0.84, 0.86, 0.86]
    r = paired_tests(a, b)
    assert r["n"] == 6
    assert r["wilcoxon_p"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert r["wilcoxon_p"] == pytest.approx(0.03125)  # all six differences positive: exact two-sided 2/2^6
    assert r["t_test_p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_adapt_input_channels_preserves_the_response_to_identical_channels():
    import torch

    w = torch.randn(8, 1, 3, 3, 3)
    w2 = adapt_input_channels(w, 2)
    assert w2.shape == (8, 2, 3, 3, 3)
    x = torch.randn(1, 1, 6, 6, 6)
    y1 = torch.nn.functional.conv3d(x, w)
    y2 = torch.nn.functional.conv3d(x.repeat(1, 2, 1, 1, 1), w2)
    torch.testing.assert_close(y1, y2)
