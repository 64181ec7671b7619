"""The one size rule: a reference series too small for the model is refused, with the extent found and needed."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_synth import rotation

from operators.core.errors import GeometryError
from operators.core.geometry import Grid, Volume
from operators.core.model.schema import Preprocessing
from operators.core.steps.intensity import Normalisation
from operators.core.steps.preprocess import MIN_PATCH_FRACTION, check_extent, to_model_input

PRE = Preprocessing(channels=("T1c",), spacing_mm=(2.0, 2.0, 2.0), orientation="LPS",
                    normalisation=Normalisation.from_dict({"method": "zscore", "region": "nonzero"}),
                    patch_size=(64, 64, 64))  # 128 mm patch edge: at least 64 mm needed on every axis


def _grid(slices: int, step: float) -> Grid:
    return Grid.from_parts((slices, 320, 260), origin=np.zeros(3), spacing=np.array([0.6875, 0.6875, step]),
                           direction=rotation(10.0, -20.0))


def test_rule_is_half_the_shortest_patch_edge() -> None:
    assert MIN_PATCH_FRACTION == 0.5
    check_extent(_grid(10, 6.5), PRE)  # 65 mm
    with pytest.raises(GeometryError, match=(
        r"T1c series is too small for the model: it covers 58\.5 mm along its slice normal .*\(9 x 6\.500 mm\); "
        r"the model needs at least 64\.0 mm on every axis \(0\.5 of its shortest patch edge, 128\.0 mm"
    )):
        check_extent(_grid(9, 6.5), PRE, name="T1c")


def test_in_plane_extent_counts_too() -> None:
    narrow = Grid.from_parts((40, 320, 90), origin=np.zeros(3), spacing=np.array([0.6875, 0.6875, 2.0]),
                             direction=np.eye(3))
    with pytest.raises(GeometryError, match=r"61\.9 mm along its row direction \(Columns x PixelSpacing\[1\]\) "
                       r"\(90 x 0\.688 mm\)"):
        check_extent(narrow, PRE)


def test_model_input_applies_the_rule() -> None:
    grid = _grid(4, 6.5)
    with pytest.raises(GeometryError, match=r"reference series is too small .* 26\.0 mm"):
        to_model_input([Volume(np.ones(grid.shape, np.float32), grid)], PRE, names=["reference"])
