"""Post-processing with hand-computed volumes."""

import numpy as np
import pytest

from operators.core.geometry import Grid, Volume
from operators.core.model.schema import Postprocessing
from operators.core.steps.postprocess import postprocess


def grid(shape, spacing=(1.0, 2.0, 0.5)):
    return Grid.from_parts(shape, origin=np.zeros(3), spacing=np.array(spacing), direction=np.eye(3))


def test_small_components_dropped_and_holes_filled():
    g = grid((10, 20, 20))  # voxel = 1 * 2 * 0.5 = 1 mm3
    p = np.zeros(g.shape, np.float32)
    p[2:8, 2:12, 2:12] = 0.9  # 6*10*10 = 600 mm3 block
    p[4:6, 5:8, 5:8] = 0.1  # an enclosed 2*3*3 = 18-voxel hole
    p[1, 16, 16] = 0.8  # 1 mm3 speck
    p[5:7, 15:18, 15:18] = 0.7  # 18 mm3 island
    out = postprocess(Volume(p, g), Postprocessing(threshold=0.5, min_component_mm3=20.0, fill_holes=True))
    assert out.removed_components == 2
    assert out.removed_mm3 == pytest.approx(19.0)
    assert out.filled_mm3 == pytest.approx(18.0)
    assert out.mask.array.sum() == 600
    assert out.mask.array[4:6, 5:8, 5:8].all()


def test_second_component_with_a_confident_core_survives_the_fraction_rule():
    g = grid((12, 20, 40), spacing=(1, 1, 1))
    p = np.zeros(g.shape, np.float32)
    p[1:11, 1:11, 1:11] = 0.95  # the main lesion, 1000 mm3
    p[2:6, 2:6, 20:25] = 0.95  # a second lesion of 80 mm3, all of it confident
    p[2:6, 2:6, 30:35] = 0.7  # a part of the same size the network is unsure of
    spec = Postprocessing(min_component_mm3=10.0, min_component_fraction=0.3, fill_holes=False)
    assert postprocess(Volume(p, g), spec).mask.array.sum() == 1000  # both dropped as under 30 % of the largest
    out = postprocess(Volume(p, g), Postprocessing(**spec.to_dict() | {"keep_core_mm3": 60.0, "core_threshold": 0.9}))
    assert out.kept_components == 1 and out.removed_components == 1
    assert out.mask.array[2:6, 2:6, 20:25].all() and not out.mask.array[2:6, 2:6, 30:35].any()
    # a confident core under the limit does not save it
    out = postprocess(Volume(p, g), Postprocessing(**spec.to_dict() | {"keep_core_mm3": 81.0}))
    assert out.kept_components == 0 and out.mask.array.sum() == 1000


def test_within_region_clips_output():
    g = grid((4, 4, 4), spacing=(1, 1, 1))
    p = np.full(g.shape, 0.9, np.float32)
    within = np.zeros(g.shape, bool)
    within[:2] = True
    out = postprocess(Volume(p, g), Postprocessing(min_component_mm3=0, fill_holes=False), within=within)
    assert out.mask.array.sum() == 32 and not out.mask.array[2:].any()


def test_dilation_is_in_millimetres_with_anisotropic_spacing():
    g = grid((21, 21, 21), spacing=(1.0, 2.0, 0.5))  # (x, y, z) = (1, 2, 0.5) mm
    p = np.zeros(g.shape, np.float32)
    p[10, 10, 10] = 0.9
    out = postprocess(Volume(p, g), Postprocessing(min_component_mm3=0, fill_holes=False, dilate_mm=2.0)).mask.array
    # along z (array axis 0, 0.5 mm) 2 mm = 4 voxels; along y (2 mm) 1 voxel; along x (1 mm) 2 voxels
    assert out[6:15, 10, 10].all() and not out[5, 10, 10] and not out[15, 10, 10]
    assert out[10, 9:12, 10].all() and not out[10, 8, 10]
    assert out[10, 10, 8:13].all() and not out[10, 10, 7]
