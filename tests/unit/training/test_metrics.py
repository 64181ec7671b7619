"""Metrics against hand-computed cases: spheres of known radius and offset, anisotropic spacing."""

import numpy as np
import pytest

from training.metrics import segmentation_metrics, summarise

SPACING = (1.0, 0.5, 0.6)  # (Z, Y, X) mm


def sphere(radius, centre=(32.0, 32.0, 32.0), shape=(64, 128, 110)):
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    d = np.sqrt(((z * SPACING[0]) - centre[0]) ** 2 + ((y * SPACING[1]) - centre[1]) ** 2
                + ((x * SPACING[2]) - centre[2]) ** 2)
    return d <= radius


def test_identical_masks():
    m = sphere(10)
    r = segmentation_metrics(m, m, SPACING)
    assert r["dsc"] == 1.0 and r["hd95_mm"] == 0.0 and r["asd_mm"] == 0.0
    assert r["ref_cm3"] == pytest.approx(4 / 3 * np.pi * 10**3 / 1000, rel=0.02)


def test_concentric_spheres_distance_is_the_radius_difference():
    # Every surface point of one sphere is 3 mm from the other: HD95 = ASD = 3 mm up to one voxel of discretisation.
    r = segmentation_metrics(sphere(10), sphere(13), SPACING)
    assert r["hd95_mm"] == pytest.approx(3.0, abs=1.0)
    assert r["asd_mm"] == pytest.approx(3.0, abs=0.6)
    assert r["dsc"] == pytest.approx(2 * 10**3 / (10**3 + 13**3), abs=0.02)


def test_shifted_spheres_hausdorff_is_the_offset():
    # Two equal spheres 4 mm apart along x: the largest surface distance is the offset, 4 mm.
    a, b = sphere(12), sphere(12, centre=(32.0, 32.0, 36.0))
    r = segmentation_metrics(a, b, SPACING)
    assert r["hd95_mm"] <= 4.0 + 0.6
    assert r["hd95_mm"] >= 3.0
    assert 0 < r["asd_mm"] < r["hd95_mm"]


def test_empty_prediction_gives_nan_distances_and_zero_dice():
    r = segmentation_metrics(np.zeros((8, 8, 8), bool), sphere(2, centre=(4, 2, 2), shape=(8, 8, 8)), SPACING)
    assert r["dsc"] == 0.0 and np.isnan(r["hd95_mm"]) and np.isnan(r["asd_mm"])


def test_summarise_ignores_nan():
    s = summarise([0.9, 0.8, float("nan")])
    assert s["n"] == 2 and s["mean"] == pytest.approx(0.85) and s["sd"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
