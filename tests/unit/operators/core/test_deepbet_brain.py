"""The deepbet brain-extraction bundle: weights checked by sha256 before loading, orientation round trip, clean
errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from operators.core.errors import InputDataError, ModelSpecError
from operators.core.geometry import Grid, Volume
from operators.core.model.deepbet import _lps_zyx_to_ras_xyz, _ras_xyz_to_lps_zyx
from operators.core.model.predictor import make_predictor
from operators.core.model.spec import METADATA_PATH, load_model_spec

REPO = Path(__file__).resolve().parents[4]

BUNDLE = REPO / "models" / "brain_extraction"


def test_shipped_bundle_verifies_and_names_deepbet():
    spec = load_model_spec(BUNDLE)
    assert spec.backend == "deepbet" and spec.labels == ("Brain",)
    assert spec.postprocessing.largest_component and spec.postprocessing.fill_holes_slicewise
    assert spec.postprocessing.dilate_mm == 4.0


def test_tampered_weight_hash_is_refused(tmp_path):
    shutil.copytree(BUNDLE, tmp_path / "b")
    meta = json.loads((tmp_path / "b" / METADATA_PATH).read_text())
    meta["weights_sha256"]["bbox_model"] = "0" * 64
    (tmp_path / "b" / METADATA_PATH).write_text(json.dumps(meta))
    with pytest.raises(ModelSpecError, match="bbox_model.*refusing to load"):
        load_model_spec(tmp_path / "b")


def test_orientation_round_trip_and_axes():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # (Z, Y, X) on LPS
    ras = _lps_zyx_to_ras_xyz(a)
    assert ras.shape == (4, 3, 2)
    # RAS voxel (0, 0, 0) is the most right, most anterior, lowest: LPS x and y at their last index, z first
    assert ras[0, 0, 0] == a[0, 2, 3]
    np.testing.assert_array_equal(_ras_xyz_to_lps_zyx(ras), a)


def test_blank_image_is_a_clean_input_error():
    spec = load_model_spec(BUNDLE)
    grid = Grid.from_parts((20, 64, 64), origin=np.zeros(3), spacing=np.array([2.0, 2.0, 2.0]), direction=np.eye(3))
    with pytest.raises(InputDataError, match="no positive intensity"):
        make_predictor(spec, device="cpu").probability(Volume(np.zeros(grid.shape, np.float32), grid))
