"""Source-task data: label-map listing and split, compact storage, synthetic datasets, the MSD Task04 reader."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch

from operators.core.errors import InputDataError
from operators.core.geometry import volume_from_sitk
from training.source_data import (
    MSDHippocampusDataset,
    SynthHippocampusDataset,
    fixed_validation_set,
    list_label_maps,
    load_label_map,
    split_label_maps,
)
from training.synth import SynthConfig, generate

DATA = Path(__file__).resolve().parents[3] / "../shared/data"
MAPS = DATA / "synthseg-label-maps"
SMALL = SynthConfig(shape=(40, 48, 40), spacing_mm=3.0)


@pytest.fixture(scope="module")
def map_paths() -> list[Path]:
    if not MAPS.is_dir():
        pytest.skip(f"label-map folder {MAPS} not found")
    return list_label_maps(MAPS)


def test_label_maps_are_listed_and_split_16_to_4(map_paths: list[Path]) -> None:
    assert [p.name for p in map_paths] == [f"training_seg_{n:02d}.nii.gz" for n in range(1, 21)]
    train, validation = split_label_maps(map_paths)
    assert [p.name[-9:-7] for p in validation] == ["17", "18", "19", "20"]
    assert len(train) == 16 and not set(train) & set(validation)


def test_listing_an_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match=r"no training_seg_\*\.nii\.gz files found"):
        list_label_maps(tmp_path)


def test_compact_label_map_decodes_to_the_original(map_paths: list[Path]) -> None:
    compact = load_label_map(map_paths[0])
    original = volume_from_sitk(sitk.ReadImage(str(map_paths[0])))
    assert compact.volume.array.dtype == np.uint8 and compact.values[0] == 0
    # The crop starts where the first non-zero voxel is; decode and compare on that box.
    lo = np.rint(original.grid.lps_to_index(compact.volume.grid.origin)[0][::-1]).astype(int)
    box = tuple(slice(a, a + n) for a, n in zip(lo, compact.volume.array.shape))
    assert np.array_equal(compact.values[compact.volume.array], original.array[box].astype(np.int16))
    assert original.array.astype(bool).sum() == compact.volume.array.astype(bool).sum()
    assert np.allclose(compact.volume.grid.affine[:3, :3], original.grid.affine[:3, :3])


def test_compact_and_plain_label_maps_give_the_same_sample(map_paths: list[Path]) -> None:
    compact = load_label_map(map_paths[1])
    plain = volume_from_sitk(sitk.ReadImage(str(map_paths[1])))
    a = generate(plain, config=SMALL, rng=np.random.default_rng(4), centre_lps=compact.centre_lps)
    b = generate(
        compact.volume, config=SMALL, rng=np.random.default_rng(4), label_values=compact.values,
        centre_lps=compact.centre_lps,
    )  # fmt: skip
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2].same_as(b[2])


def test_synthetic_dataset_is_deterministic_per_seed_epoch_and_index(map_paths: list[Path]) -> None:
    dataset = SynthHippocampusDataset(map_paths[:2], SMALL, samples_per_epoch=4, seed=3, mode="t1")
    assert len(dataset) == 4 and dataset.config.contrast == "t1"
    item = dataset[0]
    assert set(item) == {"image", "label"}
    assert item["image"].shape == (1, *SMALL.shape) and item["image"].dtype == torch.float32
    assert item["label"].dtype == torch.float32 and set(item["label"].unique().tolist()) == {0.0, 1.0}
    assert torch.equal(dataset[0]["image"], item["image"])
    assert not torch.equal(dataset[1]["image"], item["image"])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0]["image"], item["image"])
    again = SynthHippocampusDataset(map_paths[:2], SMALL, samples_per_epoch=4, seed=3, mode="t1")
    assert torch.equal(again[0]["image"], item["image"]) and torch.equal(again[0]["label"], item["label"])
    with pytest.raises(IndexError, match=r"index 4 out of range for 4 samples"):
        dataset[4]


def test_fixed_validation_set_is_reproducible(map_paths: list[Path]) -> None:
    _, validation = split_label_maps(map_paths)
    first = fixed_validation_set(validation[:2], SMALL, seed=0, n_per_map=2)
    second = fixed_validation_set(validation[:2], SMALL, seed=0, n_per_map=2)
    assert len(first) == 4
    for a, b in zip(first, second):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert not torch.equal(first[0]["image"], first[1]["image"])
    assert all(s["label"].sum() > 0 for s in first)


def _oblique_affine(spacing: tuple[float, float, float], angle_deg: float) -> np.ndarray:
    """NIfTI (RAS) affine: non-square voxels rotated about the superior axis."""
    a = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation * np.array(spacing)[None, :]
    affine[:3, 3] = [-10.0, 20.0, -5.0]
    return affine


def _fake_msd(root: Path, n_cases: int = 3) -> list[dict]:
    """A tiny Task04_Hippocampus folder: 32^3 images, an ellipsoid labelled 1 (front half) and 2 (back half)."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    cases = []
    ijk = np.stack(np.meshgrid(*[np.arange(32)] * 3, indexing="ij"), axis=-1).astype(float)
    for n in range(n_cases):
        affine = _oblique_affine((1.0, 1.2, 0.8), 10.0 * n + 5.0)
        centre = np.array([14.0 + n, 16.0, 17.0])
        inside = (((ijk - centre) / np.array([6.0, 5.0, 7.0])) ** 2).sum(axis=-1) <= 1.0
        label = np.where(inside, np.where(ijk[..., 1] < centre[1], 1, 2), 0).astype(np.uint8)
        image = (100 + 50 * inside + np.random.default_rng(n).normal(0, 5, inside.shape)).astype(np.float32)
        name = f"hippocampus_{n + 1:03d}.nii.gz"
        for folder, array in (("imagesTr", image), ("labelsTr", label)):
            img = nib.Nifti1Image(array, affine)
            img.set_qform(affine, code=1)
            img.set_sform(affine, code=1)
            nib.save(img, str(root / folder / name))
        # Expected LPS centroid (mm) and volume (mm3), from nibabel's RAS affine.
        ras = nib.affines.apply_affine(affine, np.argwhere(label > 0)).mean(axis=0)
        cases.append({"centroid_lps": ras * np.array([-1, -1, 1]), "volume_mm3": inside.sum() * 1.0 * 1.2 * 0.8})
    manifest = {
        "name": "Hippocampus",
        "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
        "numTraining": n_cases,
        "training": [
            {"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"}
            for name in (f"hippocampus_{n + 1:03d}.nii.gz" for n in range(n_cases))
        ],
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(manifest))
    return cases


def test_msd_reader_parses_the_layout_and_keeps_the_geometry(tmp_path: Path) -> None:
    expected = _fake_msd(tmp_path)
    dataset = MSDHippocampusDataset(tmp_path, SynthConfig(spacing_mm=2.0))
    assert len(dataset) == 3 and [dataset.case_id(i) for i in range(3)][0] == "hippocampus_001"
    for n, case in enumerate(expected):
        image, target = dataset.load_case(n)
        grid = target.grid
        assert np.allclose(grid.spacing, 2.0) and np.allclose(grid.direction, np.eye(3)) and grid.same_as(image.grid)
        assert image.array.min() == 0.0 and image.array.max() == 1.0
        centroid = grid.index_to_lps(np.argwhere(target.array)[:, ::-1]).mean(axis=0)
        assert np.linalg.norm(centroid - case["centroid_lps"]) < 1.0, f"case {n}: {centroid} vs {case['centroid_lps']}"
        volume = target.array.sum() * grid.voxel_volume_mm3
        assert volume == pytest.approx(case["volume_mm3"], rel=0.15)
    item = dataset[0]
    assert item["image"].shape == item["label"].shape == (1, *dataset.load_case(0)[0].grid.shape)
    assert set(item["label"].unique().tolist()) == {0.0, 1.0}


def test_msd_reader_refuses_missing_files_and_unknown_labels(tmp_path: Path) -> None:
    _fake_msd(tmp_path, n_cases=1)
    label_path = tmp_path / "labelsTr" / "hippocampus_001.nii.gz"
    img = nib.load(str(label_path))
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj) * 3, img.affine), str(label_path))
    with pytest.raises(InputDataError, match=r"label values \[0, 3, 6\]; expected a subset of \[0, 1, 2\]"):
        MSDHippocampusDataset(tmp_path, SMALL)[0]
    label_path.unlink()
    with pytest.raises(InputDataError, match=r"hippocampus_001.nii.gz listed in 'training' does not exist"):
        MSDHippocampusDataset(tmp_path, SMALL)
