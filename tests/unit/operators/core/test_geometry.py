"""Geometry: affine conventions, resampling and its inverse on oblique grids with non-square pixels."""

import numpy as np
import pytest

from operators.core.errors import GeometryError
from operators.core.geometry import Grid, Volume, covering_grid, crop_grid, grid_from_sitk, grid_to_sitk, resample


def rotation(axis, deg):
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def oblique_grid(shape=(12, 20, 16), spacing=(0.7, 1.1, 3.0)):
    direction = rotation(0, 17) @ rotation(2, -9)
    return Grid.from_parts(shape, origin=np.array([-20.0, 15.0, 40.0]), spacing=np.array(spacing), direction=direction)


def linear_field(grid, coeffs=(0.3, -0.2, 0.5), offset=7.0):
    """f(p) = c . p + offset at every voxel centre, as a (Z, Y, X) array: reproduced exactly by linear resampling."""
    z, y, x = np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij")
    ijk = np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)
    pts = grid.index_to_lps(ijk)
    return (pts @ np.array(coeffs) + offset).reshape(grid.shape).astype(np.float32)


def test_affine_maps_index_to_patient_by_hand():
    g = Grid.from_parts((3, 4, 5), origin=np.array([10.0, 20.0, 30.0]), spacing=np.array([0.5, 0.8, 4.0]),
                        direction=np.eye(3))
    # voxel (i=2, j=3, k=1) -> origin + (2*0.5, 3*0.8, 1*4)
    np.testing.assert_allclose(g.index_to_lps([[2, 3, 1]]), [[11.0, 22.4, 34.0]])
    np.testing.assert_allclose(g.lps_to_index([[11.0, 22.4, 34.0]]), [[2, 3, 1]])
    np.testing.assert_allclose(g.spacing, [0.5, 0.8, 4.0])
    assert g.voxel_volume_mm3 == pytest.approx(1.6)


def test_sitk_round_trip_keeps_geometry():
    g = oblique_grid()
    g2 = grid_from_sitk(grid_to_sitk(g))
    assert g2.same_as(g, atol_mm=1e-9)


def test_sheared_direction_is_refused():
    affine = np.eye(4)
    affine[:3, 2] = [0.3, 0.0, 1.0]  # slice axis not perpendicular to the rows
    with pytest.raises(GeometryError, match="not orthonormal"):
        Grid(shape=(2, 2, 2), affine=affine)


def test_array_shape_must_match_grid():
    with pytest.raises(GeometryError, match=r"array shape \(2, 2\) does not match grid shape"):
        Volume(array=np.zeros((2, 2)), grid=oblique_grid())


def test_covering_grid_encloses_every_corner():
    src = oblique_grid()
    cov = covering_grid(src, spacing=np.array([2.0, 2.0, 2.0]), orientation="LPS")
    np.testing.assert_allclose(cov.direction, np.eye(3))
    idx = cov.lps_to_index(src.edge_corners_lps())
    assert np.all(idx >= -0.5 - 1e-6)
    assert np.all(idx <= np.array(cov.shape[::-1]) - 0.5 + 1e-6)
    # and is tight: no more than one voxel of slack on each axis
    extent = idx.max(axis=0) - idx.min(axis=0)
    assert np.all(np.array(cov.shape[::-1]) - extent < 1.0 + 1e-6)


def test_covering_grid_ras_orientation():
    cov = covering_grid(oblique_grid(), spacing=np.array([1.0, 1.0, 1.0]), orientation="RAS")
    np.testing.assert_allclose(cov.direction, np.diag([-1.0, -1.0, 1.0]))


def test_resample_reproduces_linear_field_and_round_trips():
    src = oblique_grid()
    vol = Volume(array=linear_field(src), grid=src, frame_of_reference_uid="1.2.3")
    target = covering_grid(src, spacing=np.array([1.0, 1.0, 1.0]))
    out = resample(vol, target, interpolation="linear", fill=np.nan)
    assert out.frame_of_reference_uid == "1.2.3"
    expected = linear_field(target)
    # Only target voxels whose centres fall between source voxel centres on every axis are interpolated (at the
    # half-voxel rim ITK clamps to the edge voxel, which is not linear).
    z, y, x = np.meshgrid(*[np.arange(n) for n in target.shape], indexing="ij")
    src_idx = src.lps_to_index(target.index_to_lps(np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1)))
    inside = np.all((src_idx >= 0) & (src_idx <= np.array(src.shape[::-1]) - 1), axis=1).reshape(target.shape)
    assert inside.sum() > 1000
    np.testing.assert_allclose(out.array[inside], expected[inside], atol=2e-3)
    # back onto the source grid: interior voxels are restored
    back = resample(out.with_array(np.nan_to_num(out.array)), src, interpolation="linear")
    interior = (slice(2, -2), slice(2, -2), slice(2, -2))
    np.testing.assert_allclose(back.array[interior], vol.array[interior], atol=2e-3)


def test_nearest_resampling_of_labels_round_trips_exactly_on_a_finer_grid():
    src = oblique_grid()
    labels = (np.arange(np.prod(src.shape)).reshape(src.shape) % 7).astype(np.uint8)
    # a finer grid with the same orientation and origin-aligned voxels: every source voxel centre is a target centre
    fine = Grid.from_parts((src.shape[0] * 3 - 2, src.shape[1] * 2 - 1, src.shape[2] * 2 - 1), origin=src.origin,
                           spacing=src.spacing / np.array([2, 2, 3]), direction=src.direction)
    up = resample(Volume(labels, src), fine, interpolation="nearest")
    assert up.array.dtype == np.uint8
    down = resample(up, src, interpolation="nearest")
    np.testing.assert_array_equal(down.array, labels)


def test_crop_grid_addresses_the_same_points():
    g = oblique_grid()
    c = crop_grid(g, (2, 3, 4), (6, 10, 12))
    assert c.shape == (4, 7, 8)
    np.testing.assert_allclose(c.index_to_lps([[0, 0, 0]]), g.index_to_lps([[4, 3, 2]]))
    np.testing.assert_allclose(c.index_to_lps([[7, 6, 3]]), g.index_to_lps([[11, 9, 5]]))
