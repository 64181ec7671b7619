"""series_to_volume: exact patient geometry, slice order, pixel decoding, and one error per geometry rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from dicom_synth import as_series, enhanced_mr, pattern, rotation, save, stack_headers, write_stack
from pydicom.uid import JPEGLSLossless, RLELossless

from operators.core.dicom.folder import scan_folder
from operators.core.dicom.volume import series_to_volume
from operators.core.errors import GeometryError, InputDataError
from operators.core.geometry import Grid, Volume

ROT = rotation(20.0, 15.0)  # oblique: no axis of the stack is aligned with LPS
R, C, N = ROT[:, 0], ROT[:, 1], ROT[:, 2]  # row direction (+i), column direction (+j), slice normal
PIXEL_SPACING = (0.5, 0.8)  # [between rows (along C), between columns (along R)]
STEP = 3.0  # slice spacing; SliceThickness is 1 mm, so 2 mm gaps
ORIGIN = np.array([-20.0, 10.0, 30.0])
SHAPE = (6, 4, 5)  # (Z, Y, X): 6 slices of 4 rows x 5 columns


def _expected_affine(origin: np.ndarray = ORIGIN) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, 0] = R * PIXEL_SPACING[1]
    affine[:3, 1] = C * PIXEL_SPACING[0]
    affine[:3, 2] = N * STEP
    affine[:3, 3] = origin
    return affine


def _read_folder(folder: Path) -> tuple[Volume, tuple]:
    (study,) = scan_folder(folder)
    (series,) = study.series
    return series_to_volume(series)


def test_oblique_nonsquare_gapped_stack_in_shuffled_nested_files(tmp_path: Path) -> None:
    volume = pattern(SHAPE)
    headers = stack_headers(SHAPE[0], rot=ROT, origin=ORIGIN, step=STEP)
    names = [f"d{k % 2}/x/{name}" for k, name in enumerate(["q", "a7", "zz", "0", "m", "b"])]
    write_stack(tmp_path, volume, headers, names=names)
    (tmp_path / "readme.txt").write_text("not DICOM")

    vol, hdrs = _read_folder(tmp_path)

    np.testing.assert_allclose(vol.grid.affine, _expected_affine(), atol=1e-5)
    assert vol.array.shape == SHAPE and vol.array.dtype == np.float32
    np.testing.assert_array_equal(vol.array, volume)  # value 1000 + 100k + 10j + i sits at [k, j, i]
    assert [int(h.InstanceNumber) for h in hdrs] == [1, 2, 3, 4, 5, 6]
    assert vol.frame_of_reference_uid == "1.2.826.0.1.3680043.8.498.3"
    # Every voxel centre by the DICOM formula (PS3.3 C.7.6.2.1.1) from that slice's own header.
    k, j, i = (a.ravel() for a in np.indices(SHAPE))
    ipp = np.array([hdrs[kk].ImagePositionPatient for kk in k], dtype=float)
    expected = ipp + i[:, None] * PIXEL_SPACING[1] * R + j[:, None] * PIXEL_SPACING[0] * C
    np.testing.assert_allclose(vol.grid.index_to_lps(np.stack([i, j, k], axis=1)), expected, atol=1e-5)


def test_positions_stepping_against_the_normal_are_sorted_along_it(tmp_path: Path) -> None:
    volume = pattern(SHAPE)
    top = ORIGIN + (SHAPE[0] - 1) * STEP * N
    headers = stack_headers(SHAPE[0], rot=ROT, origin=top, step=-STEP)  # instance 1 is the highest slice
    write_stack(tmp_path, volume, headers)

    vol, hdrs = _read_folder(tmp_path)

    np.testing.assert_allclose(vol.grid.affine, _expected_affine(ORIGIN), atol=1e-5)
    np.testing.assert_array_equal(vol.array, volume[::-1])
    assert [int(h.InstanceNumber) for h in hdrs] == [6, 5, 4, 3, 2, 1]
    assert np.linalg.det(vol.grid.direction) == pytest.approx(1.0)


def test_rescale_slope_and_intercept_give_float32(tmp_path: Path) -> None:
    volume = pattern(SHAPE)
    headers = stack_headers(SHAPE[0], rot=ROT, step=STEP, RescaleSlope=2.5, RescaleIntercept=-100)
    write_stack(tmp_path, volume, headers)

    vol, _ = _read_folder(tmp_path)

    assert vol.array.dtype == np.float32
    np.testing.assert_allclose(vol.array, volume * 2.5 - 100)


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless], ids=["RLE", "JPEG-LS"])
def test_compressed_transfer_syntaxes_decode_through_pydicom(tmp_path: Path, syntax: str) -> None:
    volume = pattern(SHAPE)
    paths = write_stack(tmp_path, volume, stack_headers(SHAPE[0], rot=ROT, step=STEP))
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(path)

    vol, hdrs = _read_folder(tmp_path)

    assert hdrs[0].file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(vol.array, volume)


def test_enhanced_multiframe_frames_become_slices(tmp_path: Path) -> None:
    volume = pattern(SHAPE)
    order = [3, 0, 5, 1, 4, 2]  # frames stored out of position order
    ds = enhanced_mr(volume, rot=ROT, origin=ORIGIN, step=STEP, pixel_spacing=PIXEL_SPACING, frame_order=order,
                     slope=2.0, intercept=-5.0)
    save(ds, tmp_path / "enhanced")

    (study,) = scan_folder(tmp_path)
    (series,) = study.series
    assert [inst.frame for inst in series.instances] == list(range(6))
    vol, hdrs = series_to_volume(series)

    np.testing.assert_allclose(vol.grid.affine, _expected_affine(), atol=1e-5)
    np.testing.assert_allclose(vol.array, volume * 2.0 - 5.0)
    np.testing.assert_allclose(
        [h.ImagePositionPatient for h in hdrs], [ORIGIN + k * STEP * N for k in range(6)], atol=1e-5
    )


def test_round_trip_agrees_with_simpleitk(tmp_path: Path) -> None:
    """Volume -> DICOM slices -> series_to_volume restores the grid; SimpleITK (GDCM) reads the same geometry."""
    rng = np.random.default_rng(7)
    rot = rotation(-35.0, 25.0)
    grid = Grid.from_parts((7, 9, 11), origin=np.array([12.5, -40.0, 7.25]), spacing=np.array([0.8, 0.5, 2.5]),
                           direction=rot)
    source = Volume(array=rng.integers(0, 4000, size=grid.shape).astype(np.uint16), grid=grid)
    headers = []
    for k in range(grid.shape[0]):
        headers.append(stack_headers(1, rot=rot, origin=grid.index_to_lps([0, 0, k])[0], rows=9, cols=11,
                                     pixel_spacing=(0.5, 0.8), InstanceNumber=grid.shape[0] - k)[0])
    names = [f"{(k * 5) % 7:02d}.dcm" for k in range(grid.shape[0])]
    write_stack(tmp_path, source.array, headers, names=names)

    vol, _ = _read_folder(tmp_path)

    assert vol.grid.same_as(grid, atol_mm=1e-4)
    np.testing.assert_array_equal(vol.array, source.array)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path)))
    image = reader.Execute()
    np.testing.assert_allclose(image.GetOrigin(), vol.grid.origin, atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), vol.grid.spacing, atol=1e-4)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), vol.grid.direction, atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), vol.array)


def test_real_t1post_matches_simpleitk_and_mask_is_voxel_aligned(shared_data: Path) -> None:
    folder = shared_data / "tcia-brain-tumor-progression" / "PGBM-003"
    (study,) = scan_folder(folder)
    by_name = {s.description: s for s in study.series}
    t1, hdrs = series_to_volume(by_name["T1post"])
    mask, _ = series_to_volume(by_name["Mask_Tumor"])

    assert t1.array.shape == (22, 320, 280)
    assert t1.grid.spacing == pytest.approx([0.6875, 0.6875, 6.5], abs=1e-4)  # 5 mm slices with gaps
    assert mask.grid.same_as(t1.grid, atol_mm=1e-3)
    assert t1.frame_of_reference_uid == mask.frame_of_reference_uid == str(hdrs[0].FrameOfReferenceUID)
    reader = sitk.ImageSeriesReader()
    series_dir = next(folder.glob("*/T1post"))
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series_dir)))
    image = reader.Execute()
    np.testing.assert_allclose(image.GetOrigin(), t1.grid.origin, atol=1e-4)
    np.testing.assert_allclose(image.GetSpacing(), t1.grid.spacing, atol=1e-4)
    np.testing.assert_allclose(np.reshape(image.GetDirection(), (3, 3)), t1.grid.direction, atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), t1.array)


# ------------------------------------------------------------------------------------------- geometry errors
def _headers(n: int = 6, **kwargs: object) -> list:
    return stack_headers(n, rot=ROT, origin=ORIGIN, step=STEP, **kwargs)


def test_orientation_differs() -> None:
    headers = _headers()
    tilted = rotation(21.0, 15.0)
    headers[3].ImageOrientationPatient = list(tilted[:, 0]) + list(tilted[:, 1])
    with pytest.raises(GeometryError, match=r"ImageOrientationPatient \(0020,0037\) differs between instances; found"):
        series_to_volume(as_series(headers))


def test_orientation_not_orthonormal() -> None:
    headers = _headers()
    for h in headers:
        h.ImageOrientationPatient = [1, 0, 0, 0.1, 1, 0]
    with pytest.raises(GeometryError, match=r"ImageOrientationPatient \(0020,0037\) is .* orthogonal unit vectors"):
        series_to_volume(as_series(headers))


def test_pixel_spacing_differs() -> None:
    headers = _headers()
    headers[2].PixelSpacing = [0.5, 0.9]
    with pytest.raises(GeometryError, match=r"PixelSpacing \(0028,0030\) differs .*found \[0.5, 0.9\].*expected"):
        series_to_volume(as_series(headers))


def test_pixel_spacing_missing() -> None:
    headers = _headers()
    del headers[4].PixelSpacing
    with pytest.raises(GeometryError, match=r"PixelSpacing \(0028,0030\) is missing in slice_004.dcm"):
        series_to_volume(as_series(headers))


def test_rows_differ() -> None:
    headers = _headers()
    headers[1].Rows = 8
    with pytest.raises(GeometryError, match=r"Rows \(0028,0010\) / Columns \(0028,0011\) differ.*found \(8, 5\)"):
        series_to_volume(as_series(headers))


def test_position_missing() -> None:
    headers = _headers()
    del headers[1].ImagePositionPatient
    with pytest.raises(GeometryError, match=r"ImagePositionPatient \(0020,0032\) is missing in slice_001.dcm"):
        series_to_volume(as_series(headers))


def test_two_slices_at_same_position() -> None:
    headers = _headers()
    headers[4].ImagePositionPatient = headers[3].ImagePositionPatient
    with pytest.raises(GeometryError, match=r"ImagePositionPatient \(0020,0032\) .* is shared by"):
        series_to_volume(as_series(headers))


def test_missing_slice() -> None:
    headers = _headers()
    del headers[3]
    with pytest.raises(GeometryError, match=r"ImagePositionPatient \(0020,0032\) steps 6.0000 mm .*a slice is missing"):
        series_to_volume(as_series(headers))


def test_irregular_spacing() -> None:
    headers = _headers()
    headers[3].ImagePositionPatient = list(np.asarray(headers[3].ImagePositionPatient, dtype=float) + 0.2 * N)
    with pytest.raises(GeometryError, match=r"ImagePositionPatient \(0020,0032\) spacing is irregular"):
        series_to_volume(as_series(headers))


def test_rounding_jitter_within_tolerance_is_accepted(tmp_path: Path) -> None:
    headers = _headers()
    rng = np.random.default_rng(3)
    for h in headers:  # positions written to 2 decimals, as some scanners do
        h.ImagePositionPatient = [round(float(v) + rng.uniform(-0.004, 0.004), 2) for v in h.ImagePositionPatient]
    write_stack(tmp_path, pattern(SHAPE), headers)
    vol, _ = _read_folder(tmp_path)
    assert vol.grid.spacing[2] == pytest.approx(STEP, abs=0.01)


def test_sheared_stack_gantry_tilt() -> None:
    headers = _headers()
    for k, h in enumerate(headers):  # each slice shifted along the row direction: a tilted gantry
        h.ImagePositionPatient = list(np.asarray(h.ImagePositionPatient, dtype=float) + k * 0.3 * R)
    with pytest.raises(GeometryError, match=r"ImagePositionPatient \(0020,0032\) .* off the slice normal .*gantry"):
        series_to_volume(as_series(headers))


def test_fewer_than_two_slices() -> None:
    with pytest.raises(GeometryError, match=r"at least 2 slices, found 1 \(ImagePositionPatient \(0020,0032\)\)"):
        series_to_volume(as_series(_headers(1)))


def test_frame_of_reference_differs() -> None:
    headers = _headers()
    headers[5].FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.99"
    with pytest.raises(GeometryError, match=r"FrameOfReferenceUID \(0020,0052\) differs"):
        series_to_volume(as_series(headers))


# ------------------------------------------------------------------------------------------- pixel errors
def test_truncated_file_names_file_and_transfer_syntax(tmp_path: Path) -> None:
    paths = write_stack(tmp_path, pattern(SHAPE), _headers())
    paths[2].write_bytes(paths[2].read_bytes()[:-7])
    with pytest.raises(InputDataError, match=r"slice_2.dcm \(TransferSyntaxUID 1.2.840.10008.1.2.1 \(Explicit VR"):
        _read_folder(tmp_path)


def test_corrupt_compressed_data_names_file_and_transfer_syntax(tmp_path: Path) -> None:
    paths = write_stack(tmp_path, pattern(SHAPE), _headers())
    ds = pydicom.dcmread(paths[4])
    ds.compress(RLELossless)
    garbled = bytearray(ds.PixelData)
    garbled[16:] = bytes((b * 7 + 13) % 256 for b in garbled[16:])  # keep the encapsulation, break the RLE header
    ds.PixelData = bytes(garbled)
    ds.save_as(paths[4])
    with pytest.raises(InputDataError, match=r"slice_4.dcm \(TransferSyntaxUID 1.2.840.10008.1.2.5 \(RLE Lossless"):
        _read_folder(tmp_path)
