"""SynthSeg-style generator: determinism, geometry of the target, intensities, thick slices, T1 table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from operators.core.errors import ConfigError
from operators.core.geometry import Volume, resample, volume_from_sitk
from training.synth import (
    EXTRACEREBRAL_MIN_LABEL,
    HIPPOCAMPUS_LABELS,
    T1_LABEL_TISSUE,
    T1_TISSUES,
    SynthConfig,
    brain_centre_lps,
    generate,
    simulate_thick_slices,
)
from training.synth_preview import save_preview

DATA = Path(__file__).resolve().parents[3] / "../shared/data"
MAPS = DATA / "synthseg-label-maps"
SMALL = SynthConfig(shape=(56, 64, 56))  # 112 x 128 x 112 mm around the brain centre: holds both hippocampi


def _read(number: int) -> Volume:
    path = MAPS / f"training_seg_{number:02d}.nii.gz"
    if not path.is_file():
        pytest.skip(f"label map {path} not found")
    return volume_from_sitk(sitk.ReadImage(str(path)))


@pytest.fixture(scope="module")
def map02() -> Volume:
    return _read(2)


def _hf(image: np.ndarray, axis: int) -> float:
    """High-frequency content along ``axis``: mean squared neighbour difference over the variance."""
    return float(np.mean(np.diff(image, axis=axis) ** 2) / np.var(image))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("contrast", ["random", "t1"])
def test_same_seed_gives_identical_sample_and_seeds_differ(map02: Volume, contrast: str) -> None:
    config = replace(SMALL, contrast=contrast)
    a = generate(map02, config=config, rng=np.random.default_rng(5))
    b = generate(map02, config=config, rng=np.random.default_rng(5))
    c = generate(map02, config=config, rng=np.random.default_rng(6))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2].same_as(b[2], atol_mm=0)
    assert not np.allclose(a[0], c[0], atol=1e-3)
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("contrast", ["random", "t1"])
def test_image_spans_unit_range_and_target_is_binary(map02: Volume, contrast: str) -> None:
    for seed in range(3):
        image, target, grid = generate(map02, config=replace(SMALL, contrast=contrast), rng=np.random.default_rng(seed))
        assert image.dtype == np.float32 and image.shape == SMALL.shape == grid.shape
        assert np.isfinite(image).all() and image.min() == 0.0 and image.max() == 1.0
        assert target.dtype == np.uint8 and set(np.unique(target).tolist()) == {0, 1}


def test_without_augmentation_target_is_the_nearest_neighbour_resampled_label_map() -> None:
    label_map = _read(1)  # stored as float32 labels, coronal slices: index axes are not LPS axes
    config = SynthConfig.no_augmentation(shape=(64, 72, 64))
    image, target, grid = generate(label_map, config=config, rng=np.random.default_rng(0))
    assert np.allclose(grid.direction, np.eye(3)) and np.allclose(grid.spacing, 2.0)
    centre = grid.index_to_lps((np.array(grid.shape[::-1]) - 1) / 2)[0]
    assert np.allclose(centre, brain_centre_lps(label_map), atol=1e-6)
    reference = np.isin(resample(label_map, grid, interpolation="nearest").array, HIPPOCAMPUS_LABELS)
    assert reference.sum() > 100
    assert _dice(reference, target > 0) == 1.0


def test_augmented_hippocampus_volume_follows_the_drawn_scaling(map02: Volume) -> None:
    source_mm3 = np.isin(map02.array, HIPPOCAMPUS_LABELS).sum() * map02.grid.voxel_volume_mm3
    lo, hi = SMALL.scaling_range
    affine_only = replace(SMALL, elastic_max_std_mm=0.0)
    for seed in range(4):
        params: dict = {}
        _, target, grid = generate(map02, config=affine_only, rng=np.random.default_rng(seed), params=params)
        ratio = target.sum() * grid.voxel_volume_mm3 / source_mm3
        assert abs(ratio / np.prod(params["scales"]) - 1) < 0.06, f"seed {seed}: {ratio:.3f} vs {params['scales']}"
        # The elastic field changes local volume too (its gradient is up to about 3 mm / 20 mm per axis).
        _, target, grid = generate(map02, config=SMALL, rng=np.random.default_rng(seed))
        ratio = target.sum() * grid.voxel_volume_mm3 / source_mm3
        assert lo**3 * 0.8 <= ratio <= hi**3 * 1.2, f"seed {seed}: volume ratio {ratio:.3f}"


def test_every_training_map_gives_a_hippocampus_target_in_both_hemispheres() -> None:
    for number in range(1, 17):
        label_map = _read(number)
        _, target, grid = generate(label_map, config=SMALL, rng=np.random.default_rng(number))
        assert target.sum() > 50, f"training_seg_{number:02d}: {target.sum()} hippocampus voxels"
        # LPS x of the target voxels against the brain centre: both hippocampi lie 15-40 mm off the midline.
        x = grid.index_to_lps(np.argwhere(target)[:, ::-1])[:, 0] - brain_centre_lps(label_map)[0]
        assert (x > 10).any() and (x < -10).any(), f"training_seg_{number:02d}: x from {x.min():.0f} to {x.max():.0f}"


def test_brain_target_excludes_extracerebral_labels_and_includes_ventricles(map02: Volume) -> None:
    config = SynthConfig.no_augmentation(shape=(72, 84, 72), contrast="random")
    image, target, grid = generate(map02, config=config, rng=np.random.default_rng(1), mode="brain")
    labels = resample(map02, grid, interpolation="nearest").array
    assert np.array_equal(target > 0, (labels > 0) & (labels < EXTRACEREBRAL_MIN_LABEL))
    assert target[np.isin(labels, (4, 43))].all() and np.isin(labels, (4, 43)).sum() > 100
    assert not target[labels >= EXTRACEREBRAL_MIN_LABEL].any() and (labels >= EXTRACEREBRAL_MIN_LABEL).sum() > 1000
    # Extra-cerebral tissues are in the image, each with its own intensity.
    means = [image[labels == lab].mean() for lab in (507, 511, 515)]
    assert min(abs(means[0] - means[1]), abs(means[1] - means[2]), abs(means[0] - means[2])) > 1e-3


def test_simulate_thick_slices_removes_high_frequencies_along_its_axis_only() -> None:
    image = np.random.default_rng(0).standard_normal((60, 40, 50)).astype(np.float32)
    out = simulate_thick_slices(image, axis=0, voxel_mm=1.0, thickness_mm=5.0, spacing_mm=6.5, offset_mm=0.3)
    assert out.shape == image.shape and out.dtype == np.float32
    assert _hf(out, 0) < 0.1 * _hf(image, 0)
    for axis in (1, 2):
        assert _hf(out, axis) == pytest.approx(_hf(image, axis), rel=0.1)


def test_generate_thick_slices_reduce_high_frequencies_along_the_drawn_axis(map02: Volume) -> None:
    common = {"thick_slice_thickness_mm": (5.0, 5.0), "thick_slice_gap_mm": (1.5, 1.5), "noise_max_std": 0.0}
    thin = replace(SMALL, thick_slice_prob=0.0, **common)
    thick = replace(SMALL, thick_slice_prob=1.0, **common)
    for seed in range(3):
        params: dict = {}
        a, _, _ = generate(map02, config=thin, rng=np.random.default_rng(seed))
        b, _, _ = generate(map02, config=thick, rng=np.random.default_rng(seed), params=params)
        ratios = [_hf(b, axis) / _hf(a, axis) for axis in range(3)]
        chosen = params["thick_axis"]
        # Thick slices also average the per-voxel texture, which lowers the other axes' ratios a little.
        others = [r for n, r in enumerate(ratios) if n != chosen]
        assert params["thick_slices"] and ratios[chosen] < 0.5 * min(others), f"seed {seed}: axis {chosen}, {ratios}"
        assert int(np.argmin([_hf(b, axis) for axis in range(3)])) == chosen


def test_t1_table_covers_every_generation_label_within_the_synthseg_prior_ranges() -> None:
    priors = MAPS / "priors"
    if not priors.is_dir():
        pytest.skip(f"{priors} not found")
    labels = np.load(priors / "generation_labels.npy")
    assert set(labels.tolist()) <= set(T1_LABEL_TISSUE)
    means, stds = np.load(priors / "prior_means_t1.npy")[0], np.load(priors / "prior_stds_t1.npy")[0]
    table = np.array(list(T1_TISSUES.values()))
    assert means.min() <= table[:, 0].min() and table[:, 0].max() <= means.max()
    assert stds.min() <= table[:, 2].min() and table[:, 2].max() <= stds.max()


def test_t1_contrast_orders_white_matter_grey_matter_csf(map02: Volume) -> None:
    config = replace(SMALL, contrast="t1", bias_max_std=0.0)
    for seed in range(3):
        image, _, grid = generate(map02, config=config, rng=np.random.default_rng(seed))
        labels = resample(map02, grid, interpolation="nearest").array  # close enough for region means
        wm, gm, csf = (image[np.isin(labels, group)].mean() for group in ((2, 41), (3, 42), (4, 43, 24)))
        assert wm > gm > csf, f"seed {seed}: WM {wm:.2f}, GM {gm:.2f}, CSF {csf:.2f}"


def test_labels_mode_targets_the_given_labels(map02: Volume) -> None:
    config = SynthConfig.no_augmentation(shape=(48, 56, 48))
    _, target, grid = generate(map02, config=config, rng=np.random.default_rng(0), mode="labels", target_labels=[4, 43])
    labels = resample(map02, grid, interpolation="nearest").array
    assert np.array_equal(target > 0, np.isin(labels, (4, 43)))


def test_bad_settings_are_refused_with_the_rule(map02: Volume, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"contrast must be one of .*'pd'"):
        SynthConfig(contrast="pd")
    with pytest.raises(ConfigError, match=r"scaling_range must be \(low, high\)"):
        SynthConfig(scaling_range=(1.2, 0.8))
    with pytest.raises(ConfigError, match=r"mode must be one of .*'tumour'"):
        generate(map02, config=SMALL, rng=np.random.default_rng(0), mode="tumour")
    with pytest.raises(ConfigError, match=r"target_labels must be given exactly when mode == 'labels'"):
        generate(map02, config=SMALL, rng=np.random.default_rng(0), mode="labels")
    with pytest.raises(ConfigError, match=r"generation_labels.npy not found"):
        generate(map02, config=replace(SMALL, priors_dir=str(tmp_path)), rng=np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"unknown keys \['shap'\]"):
        SynthConfig.from_dict({"shap": [1, 2, 3]})


def test_config_round_trips_through_a_dict() -> None:
    config = SynthConfig.whole_head(contrast="t1")
    assert SynthConfig.from_dict(config.to_dict()) == config


def test_save_preview_writes_a_png(map02: Volume, tmp_path: Path) -> None:
    out = save_preview(tmp_path / "preview.png", [map02], replace(SMALL, shape=(40, 48, 40)), [0])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["preview.png"]


def test_limited_field_of_view_zeroes_outside_a_slab():
    from training.synth_data import limit_field_of_view

    rng = np.random.default_rng(3)
    image = np.ones((30, 40, 36), np.float32)
    label = np.ones((30, 40, 36), np.uint8)
    im2, lab2 = limit_field_of_view(image, label, rng)
    kept = im2 > 0
    assert 0.3 < kept.mean() < 0.95  # 45-90 % of the extent along a near-axial normal
    np.testing.assert_array_equal(kept, lab2 > 0)
    again = limit_field_of_view(image, label, np.random.default_rng(3))[0]
    np.testing.assert_array_equal(again, im2)
