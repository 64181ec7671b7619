"""Tests of operators/core/writers/rtstruct.py: exact voxel-edge contours and a valid, re-readable RT Structure Set."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pydicom.valuerep import format_number_as_ds
from scipy import ndimage

from operators.core.dicom.folder import scan_folder
from operators.core.dicom.volume import series_to_volume
from operators.core.errors import GeometryError, InputDataError, ModelSpecError
from operators.core.geometry import Grid, Volume, grid_to_sitk
from operators.core.labels import structure
from operators.core.product import RTSTRUCT_SERIES_NUMBER, UID_PREFIX
from operators.core.writers.rtstruct import (
    RT_STRUCTURE_SET_STORAGE,
    build_rtstruct,
    format_ds,
    mask_to_polygons,
)
from tests.rt_readback import fill_even_odd, rasterize_rtstruct

DATA = Path(__file__).resolve().parents[4].parent / "shared" / "data"
STUDY = DATA / "tcia-brain-tumor-progression" / "PGBM-001" / "1992-04-02"
MODEL = {"name": "gbm-gtv-unet", "version": "1.2.3", "sha256": "0123456789abcdef" * 4}
GTV = structure("GTV")
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


# ----------------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------------


def _area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) / 2


def _poly(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=np.float64)


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    ax, ay, az = np.radians([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _reference(grid: Grid) -> list[Dataset]:
    """Minimal MR image headers lying on ``grid``, one per slice."""
    study, series, frame = (generate_uid(prefix=UID_PREFIX) for _ in range(3))
    d = grid.direction
    headers = []
    for k in range(grid.shape[0]):
        h = Dataset()
        h.SpecificCharacterSet = "ISO_IR 100"
        h.SOPClassUID = MR_IMAGE_STORAGE
        h.SOPInstanceUID = generate_uid(prefix=UID_PREFIX)
        h.PatientName, h.PatientID, h.PatientSex = "Test^Synthetic", "SYN-001", "O"
        h.StudyInstanceUID, h.SeriesInstanceUID, h.FrameOfReferenceUID = study, series, frame
        h.StudyDate, h.StudyTime, h.StudyID, h.AccessionNumber = "20240102", "101010", "1", "A1"
        h.Rows, h.Columns = grid.shape[1], grid.shape[2]
        h.ImagePositionPatient = [format_number_as_ds(v) for v in grid.index_to_lps([0, 0, k])[0]]
        h.ImageOrientationPatient = [format_number_as_ds(v) for v in np.concatenate([d[:, 0], d[:, 1]])]
        h.PixelSpacing = [format_number_as_ds(grid.spacing[1]), format_number_as_ds(grid.spacing[0])]
        headers.append(h)
    return headers


def _oblique_grid(shape: tuple[int, int, int]) -> Grid:
    return Grid.from_parts(
        shape,
        origin=np.array([-123.456789, 87.654321, -45.678912]),
        spacing=np.array([0.43, 0.91, 2.7]),
        direction=_rotation(-15.0, 7.0, 20.0),
    )


def _blobs(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Smooth random blobs (islands, holes, nesting) plus salt-and-pepper (single pixels, diagonal contacts)."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.random(shape), sigma=(0.5, 2.0, 2.0))
    mask = smooth > np.quantile(smooth, 0.6)
    return mask ^ (rng.random(shape) < 0.03)


def _roundtrip(ds: Dataset) -> Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def _dciodvfy_errors(path: Path) -> tuple[list[str], str]:
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    return [line for line in output.splitlines() if line.startswith("Error")], output


needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed")
needs_plastimatch = pytest.mark.skipif(shutil.which("plastimatch") is None, reason="plastimatch not installed")
needs_data = pytest.mark.skipif(not STUDY.is_dir(), reason=f"shared data not found at {STUDY}")


# ----------------------------------------------------------------------------------------------------------------
# contour extraction against hand-computed polygons
# ----------------------------------------------------------------------------------------------------------------

HAND_CASES = {
    "single pixel": (
        [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
        [_poly((0.5, 0.5), (1.5, 0.5), (1.5, 1.5), (0.5, 1.5))],
    ),
    "2x3 rectangle": (
        [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]],
        [_poly((0.5, 0.5), (3.5, 0.5), (3.5, 2.5), (0.5, 2.5))],
    ),
    "L-shape": (
        [[1, 0], [1, 0], [1, 1]],
        [_poly((-0.5, -0.5), (0.5, -0.5), (0.5, 1.5), (1.5, 1.5), (1.5, 2.5), (-0.5, 2.5))],
    ),
    "square ring": (
        [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 0, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]],
        [
            _poly((0.5, 0.5), (3.5, 0.5), (3.5, 3.5), (0.5, 3.5)),
            _poly((1.5, 1.5), (1.5, 2.5), (2.5, 2.5), (2.5, 1.5)),  # hole: opposite orientation
        ],
    ),
    "island inside a hole": (
        [
            [1, 1, 1, 1, 1],
            [1, 0, 0, 0, 1],
            [1, 0, 1, 0, 1],
            [1, 0, 0, 0, 1],
            [1, 1, 1, 1, 1],
        ],
        [
            _poly((-0.5, -0.5), (4.5, -0.5), (4.5, 4.5), (-0.5, 4.5)),
            _poly((0.5, 0.5), (0.5, 3.5), (3.5, 3.5), (3.5, 0.5)),
            _poly((1.5, 1.5), (2.5, 1.5), (2.5, 2.5), (1.5, 2.5)),
        ],
    ),
    "two diagonal pixels": (
        [[1, 0], [0, 1]],
        [
            _poly((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)),
            _poly((0.5, 0.5), (1.5, 0.5), (1.5, 1.5), (0.5, 1.5)),
        ],
    ),
    "anti-diagonal pixels": (
        [[0, 1], [1, 0]],
        [
            _poly((0.5, -0.5), (1.5, -0.5), (1.5, 0.5), (0.5, 0.5)),
            _poly((-0.5, 0.5), (0.5, 0.5), (0.5, 1.5), (-0.5, 1.5)),
        ],
    ),
    "pocket closed by a diagonal contact": (
        [[1, 1, 1], [1, 0, 1], [0, 1, 1]],
        [
            _poly((-0.5, -0.5), (2.5, -0.5), (2.5, 2.5), (0.5, 2.5), (0.5, 1.5), (-0.5, 1.5)),
            _poly((0.5, 0.5), (0.5, 1.5), (1.5, 1.5), (1.5, 0.5)),
        ],
    ),
    "whole image (all borders)": (
        np.ones((3, 4)),
        [_poly((-0.5, -0.5), (3.5, -0.5), (3.5, 2.5), (-0.5, 2.5))],
    ),
    "pixel in the last row and column": (
        [[0, 0, 0], [0, 0, 1]],
        [_poly((1.5, 0.5), (2.5, 0.5), (2.5, 1.5), (1.5, 1.5))],
    ),
}


@pytest.mark.parametrize("name", list(HAND_CASES))
def test_mask_to_polygons_matches_hand_computed(name: str) -> None:
    mask, expected = HAND_CASES[name]
    found = mask_to_polygons(np.asarray(mask, dtype=bool))
    assert len(found) == len(expected), f"{name}: {found}"
    for got, want in zip(found, expected):
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_mask_to_polygons_empty_and_bad_input() -> None:
    assert mask_to_polygons(np.zeros((4, 5), dtype=bool)) == []
    with pytest.raises(ValueError, match=r"2-D \(rows, cols\) mask, found shape \(2, 3, 4\)"):
        mask_to_polygons(np.zeros((2, 3, 4)))


@pytest.mark.parametrize("density", [0.3, 0.5, 0.7])
def test_mask_to_polygons_properties_on_random_masks(density: float) -> None:
    """Even-odd fill restores the mask; polygons are simple, axis-aligned, oriented, without collinear vertices."""
    rng = np.random.default_rng(int(density * 10))
    for _ in range(60):
        mask = rng.random((int(rng.integers(1, 14)), int(rng.integers(1, 14)))) < density
        polygons = mask_to_polygons(mask)
        np.testing.assert_array_equal(fill_even_odd(polygons, mask.shape), mask)
        # Signed areas add up to the pixel count: outer loops positive, holes negative.
        assert sum(_area(p) for p in polygons) == pytest.approx(mask.sum())
        outer = sum(_area(p) > 0 for p in polygons)
        assert outer == ndimage.label(mask)[1]  # one outer loop per 4-connected island
        for p in polygons:
            assert len(p) >= 4 and len(p) % 2 == 0
            assert np.all(np.mod(p, 1.0) == 0.5), "vertices must lie on pixel corners"
            assert len({tuple(v) for v in p}) == len(p), "a polygon passes a vertex twice"
            step = np.roll(p, -1, axis=0) - p
            assert np.all((step == 0).sum(axis=1) == 1), "edges must be axis-aligned and non-zero"
            turn = step[:, 0] * np.roll(step, 1, axis=0)[:, 1] - step[:, 1] * np.roll(step, 1, axis=0)[:, 0]
            assert np.all(turn != 0), "collinear vertex kept"


# ----------------------------------------------------------------------------------------------------------------
# RTSTRUCT on synthetic oblique grids
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_round_trip_oblique_non_square_grid_is_exact(seed: int) -> None:
    grid = _oblique_grid((5, 33, 41))
    mask = _blobs(grid.shape, seed)
    reference = _reference(grid)
    ds = _roundtrip(build_rtstruct(Volume(mask, grid, reference[0].FrameOfReferenceUID), reference,
                                   structure=GTV, model=MODEL))  # fmt: skip
    back = rasterize_rtstruct(ds, reference, grid)
    assert np.array_equal(back, mask), f"read-back differs in {np.count_nonzero(back != mask)} voxels"


def test_contour_points_trace_voxel_edges_in_patient_space() -> None:
    """A single voxel gives its 4 corners, mapped through the affine, on the referenced image."""
    grid = _oblique_grid((3, 4, 5))
    mask = np.zeros(grid.shape, dtype=bool)
    mask[1, 2, 3] = True
    reference = _reference(grid)
    ds = build_rtstruct(Volume(mask, grid), reference, structure=GTV, model=MODEL)
    (contour,) = ds.ROIContourSequence[0].ContourSequence
    corners = np.array([[2.5, 1.5, 1], [3.5, 1.5, 1], [3.5, 2.5, 1], [2.5, 2.5, 1]])
    expected = grid.index_to_lps(corners)
    np.testing.assert_allclose(np.asarray(contour.ContourData, dtype=float).reshape(-1, 3), expected, atol=6e-4)
    assert contour.NumberOfContourPoints == 4
    assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID == reference[1].SOPInstanceUID


def test_contours_lie_on_their_image_plane_when_the_stack_is_nearly_regular() -> None:
    """A reference image a little off the grid (within tolerance) gets its contours anchored at its own position."""
    grid = _oblique_grid((3, 4, 5))
    reference = _reference(grid)
    delta = 0.04 * grid.direction[:, 2] + 0.02 * grid.direction[:, 0]
    position = np.asarray(reference[1].ImagePositionPatient, dtype=float) + delta
    reference[1].ImagePositionPatient = [format_number_as_ds(v) for v in position]
    mask = np.zeros(grid.shape, dtype=bool)
    mask[1, 2, 3] = True
    ds = build_rtstruct(Volume(mask, grid), reference, structure=GTV, model=MODEL)
    (contour,) = ds.ROIContourSequence[0].ContourSequence
    points = np.asarray(contour.ContourData, dtype=float).reshape(-1, 3)
    np.testing.assert_allclose((points - position) @ grid.direction[:, 2], 0.0, atol=1e-3)
    corners = np.array([[2.5, 1.5, 1], [3.5, 1.5, 1], [3.5, 2.5, 1], [2.5, 2.5, 1]])
    np.testing.assert_allclose(points, grid.index_to_lps(corners) + delta, atol=1e-3)


def test_rtstruct_header_content() -> None:
    grid = _oblique_grid((4, 20, 24))
    mask = _blobs(grid.shape, 7)
    reference = _reference(grid)
    ds = _roundtrip(build_rtstruct(Volume(mask, grid), reference, structure=GTV, model=MODEL))

    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.SOPClassUID == RT_STRUCTURE_SET_STORAGE == ds.file_meta.MediaStorageSOPClassUID
    assert ds.SOPInstanceUID.startswith(UID_PREFIX)
    assert ds.Modality == "RTSTRUCT" and ds.SeriesNumber == RTSTRUCT_SERIES_NUMBER
    assert ds.SeriesInstanceUID != reference[0].SeriesInstanceUID
    assert ds.SeriesDescription == "GTV auto-contour (UNAPPROVED)"
    assert ds.PatientID == "SYN-001" and ds.StudyInstanceUID == reference[0].StudyInstanceUID
    assert ds.PatientBirthDate == "" and ds.ReferringPhysicianName == ""  # type 2, absent in the reference
    assert ds.ApprovalStatus == "UNAPPROVED"
    assert MODEL["version"] in ds.SoftwareVersions[1]

    (frame,) = ds.ReferencedFrameOfReferenceSequence
    assert frame.FrameOfReferenceUID == reference[0].FrameOfReferenceUID
    (study,) = frame.RTReferencedStudySequence
    assert study.ReferencedSOPClassUID == "1.2.840.10008.3.1.2.3.1"
    assert study.ReferencedSOPInstanceUID == reference[0].StudyInstanceUID
    (series,) = study.RTReferencedSeriesSequence
    assert series.SeriesInstanceUID == reference[0].SeriesInstanceUID
    assert [i.ReferencedSOPInstanceUID for i in series.ContourImageSequence] == [h.SOPInstanceUID for h in reference]

    (roi,) = ds.StructureSetROISequence
    assert roi.ROINumber == 1 and roi.ROIName == "GTV" and roi.ROIGenerationAlgorithm == "AUTOMATIC"
    assert roi.ReferencedFrameOfReferenceUID == reference[0].FrameOfReferenceUID
    assert len(roi.ROIGenerationDescription) <= 64 and MODEL["sha256"][:16] in roi.ROIGenerationDescription
    assert MODEL["sha256"] in roi.ROIDescription
    (observation,) = ds.RTROIObservationsSequence
    assert observation.RTROIInterpretedType == "GTV" and observation.ReferencedROINumber == 1
    (roi_contour,) = ds.ROIContourSequence
    assert list(roi_contour.ROIDisplayColor) == list(GTV.color_rgb)

    uids = {h.SOPInstanceUID for h in reference}
    for contour in roi_contour.ContourSequence:
        assert contour.ContourGeometricType == "CLOSED_PLANAR"
        assert len(contour.ContourImageSequence) == 1
        assert contour.ContourImageSequence[0].ReferencedSOPInstanceUID in uids
        assert contour.ContourImageSequence[0].ReferencedSOPClassUID == MR_IMAGE_STORAGE
        assert len(contour.ContourData) == 3 * contour.NumberOfContourPoints
    # Every DS value as written in the file fits 16 characters.
    raw = [c["ContourData"] for c in roi_contour.ContourSequence]
    assert all(len(str(v)) <= 16 for element in raw for v in element.value)


def test_series_number_is_fixed_and_uids_are_new() -> None:
    grid = _oblique_grid((2, 6, 6))
    reference = _reference(grid)
    mask = np.zeros(grid.shape, dtype=bool)
    mask[0, 2:4, 2:4] = True
    a = build_rtstruct(Volume(mask, grid), reference, structure=GTV, model=MODEL)
    b = build_rtstruct(Volume(mask, grid), reference, structure=GTV, model=MODEL, series_number=77)
    assert a.SeriesNumber == RTSTRUCT_SERIES_NUMBER and b.SeriesNumber == 77
    assert a.SOPInstanceUID != b.SOPInstanceUID and a.SeriesInstanceUID != b.SeriesInstanceUID


def test_character_set_and_deidentification_flags() -> None:
    grid = _oblique_grid((2, 6, 6))
    reference = _reference(grid)
    mask = Volume(np.ones(grid.shape, bool), grid)
    reference[0].SpecificCharacterSet = "ISO_IR 192"
    reference[0].PatientIdentityRemoved = "YES"  # without a method: copying it would break type 1C rules
    ds = build_rtstruct(mask, reference, structure=GTV, model=MODEL)
    assert ds.SpecificCharacterSet == "ISO_IR 192" and "PatientIdentityRemoved" not in ds
    reference[0].DeidentificationMethod = "test profile"
    del reference[0].SpecificCharacterSet
    ds = build_rtstruct(mask, reference, structure=GTV, model=MODEL)
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethod == "test profile"


def test_format_ds() -> None:
    assert format_ds(np.array([1.0, -0.0004, 12.3456, -1234.56789, 0.1 + 0.2])) == [
        "1", "0", "12.346", "-1234.568", "0.3"]  # fmt: skip
    assert format_ds(np.array([-999999999.9999])) == ["-1000000000"]
    for bad in (1e16, np.nan):
        with pytest.raises(GeometryError, match="cannot be written as a DICOM DS value"):
            format_ds(np.array([0.0, bad]))


def test_no_patient_data_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    grid = _oblique_grid((2, 6, 6))
    reference = _reference(grid)
    with caplog.at_level("DEBUG", logger="operators.core.writers.rtstruct"):
        build_rtstruct(Volume(np.ones(grid.shape, bool), grid), reference, structure=GTV, model=MODEL)
    assert caplog.records and MODEL["sha256"] in caplog.text
    assert "SYN-001" not in caplog.text and "Synthetic" not in caplog.text


@needs_dciodvfy
def test_empty_mask_gives_valid_structure_set_with_empty_roi(tmp_path: Path) -> None:
    grid = _oblique_grid((3, 8, 9))
    reference = _reference(grid)
    ds = build_rtstruct(Volume(np.zeros(grid.shape, bool), grid), reference, structure=GTV, model=MODEL)
    assert "ContourSequence" not in ds.ROIContourSequence[0]
    assert ds.StructureSetROISequence[0].ROIName == "GTV" and len(ds.RTROIObservationsSequence) == 1
    path = tmp_path / "rtstruct_empty.dcm"
    ds.save_as(path, enforce_file_format=True)
    errors, output = _dciodvfy_errors(path)
    assert not errors, output
    assert not rasterize_rtstruct(pydicom.dcmread(path), reference, grid).any()


# ----------------------------------------------------------------------------------------------------------------
# refusals
# ----------------------------------------------------------------------------------------------------------------


def _inputs() -> tuple[Volume, list[Dataset]]:
    grid = _oblique_grid((3, 8, 9))
    return Volume(np.ones(grid.shape, bool), grid), _reference(grid)


ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"


def _multiframe_inputs(frame_of_slice: tuple[int, ...] = (3, 1, 2)) -> tuple[Volume, list[Dataset]]:
    """Per-frame headers of one enhanced instance (as multiframe.frame_headers makes them); slice k is frame
    ``frame_of_slice[k]``."""
    mask, reference = _inputs()
    uid = reference[0].SOPInstanceUID
    for header, frame in zip(reference, frame_of_slice):
        header.SOPClassUID, header.SOPInstanceUID = ENHANCED_MR_IMAGE_STORAGE, uid
        header.NumberOfFrames, header.ReferencedFrameNumber = len(reference), frame
    return mask, reference


def test_multiframe_reference_names_each_contours_frame() -> None:
    mask, reference = _multiframe_inputs()
    single = build_rtstruct(mask, _inputs()[1], structure=GTV, model=MODEL)
    ds = _roundtrip(build_rtstruct(mask, reference, structure=GTV, model=MODEL))

    contours = ds.ROIContourSequence[0].ContourSequence
    assert len(contours) == 3  # one square per slice
    for contour, frame in zip(contours, (3, 1, 2)):
        (image,) = contour.ContourImageSequence
        assert image.ReferencedSOPClassUID == ENHANCED_MR_IMAGE_STORAGE
        assert image.ReferencedSOPInstanceUID == reference[0].SOPInstanceUID
        assert int(image.ReferencedFrameNumber) == frame
    # The contour points do not depend on how the images are stored.
    assert [c.ContourData for c in contours] == [c.ContourData for c in single.ROIContourSequence[0].ContourSequence]
    series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    (listed,) = series.ContourImageSequence  # the instance once; all its frames are used, so no frame numbers
    assert listed.ReferencedSOPInstanceUID == reference[0].SOPInstanceUID and "ReferencedFrameNumber" not in listed


def test_multiframe_reference_using_some_frames_lists_them() -> None:
    mask, reference = _multiframe_inputs((2, 3, 4))
    for header in reference:
        header.NumberOfFrames = 6
    ds = build_rtstruct(mask, reference, structure=GTV, model=MODEL)
    series = ds.ReferencedFrameOfReferenceSequence[0].RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    (listed,) = series.ContourImageSequence
    assert [int(f) for f in listed.ReferencedFrameNumber] == [2, 3, 4]


def test_nonconforming_dates_are_written_empty_without_quoting_them(caplog: pytest.LogCaptureFixture) -> None:
    mask, reference = _inputs()
    with pydicom.config.disable_value_validation():  # values from the wild, as a file would hold them
        for header in reference:
            header.add(DataElement(0x00100030, "DA", "1938-04-17"))  # PatientBirthDate
            header.add(DataElement(0x00080030, "TM", "10:10:10"))  # StudyTime
    caplog.clear()
    with caplog.at_level("DEBUG"):
        ds = _roundtrip(build_rtstruct(mask, reference, structure=GTV, model=MODEL))
    assert ds.PatientBirthDate == "" and ds.StudyTime == "" and ds.StudyDate == "20240102"
    assert ds.PatientName == "Test^Synthetic" and ds.PatientID == "SYN-001"
    assert "PatientBirthDate (0010,0030)" in caplog.text and "StudyTime (0008,0030)" in caplog.text
    assert "1938" not in caplog.text and "10:10" not in caplog.text


def test_refuses_reference_of_wrong_length() -> None:
    mask, reference = _inputs()
    with pytest.raises(GeometryError, match=r"has 2 images, expected one per mask slice \(3\)"):
        build_rtstruct(mask, reference[:2], structure=GTV, model=MODEL)


def test_refuses_reference_off_the_grid() -> None:
    mask, reference = _inputs()
    position = np.asarray(reference[1].ImagePositionPatient, dtype=float) + [0, 0, 0.5]
    reference[1].ImagePositionPatient = [format_number_as_ds(v) for v in position]
    with pytest.raises(GeometryError, match=r"image 1 .*ImagePositionPatient \(0020,0032\).*tolerance 0\.1075 mm"):
        build_rtstruct(mask, reference, structure=GTV, model=MODEL)


def test_refuses_other_orientation_and_spacing() -> None:
    mask, reference = _inputs()
    reference[0].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    with pytest.raises(GeometryError, match=r"ImageOrientationPatient \(0020,0037\)"):
        build_rtstruct(mask, reference, structure=GTV, model=MODEL)
    mask, reference = _inputs()
    reference[2].PixelSpacing = [0.91, 0.5]
    with pytest.raises(GeometryError, match=r"image 2 .*PixelSpacing \(0028,0030\)"):
        build_rtstruct(mask, reference, structure=GTV, model=MODEL)


def test_refuses_other_frame_of_reference() -> None:
    mask, reference = _inputs()
    other = Volume(mask.array, mask.grid, frame_of_reference_uid="1.2.3.4")
    with pytest.raises(GeometryError, match=r"mask FrameOfReferenceUID 1\.2\.3\.4 differs"):
        build_rtstruct(other, reference, structure=GTV, model=MODEL)


def test_refuses_mixed_series_and_repeated_instances() -> None:
    mask, reference = _inputs()
    reference[2].SeriesInstanceUID = "1.2.3"
    with pytest.raises(InputDataError, match="differ in SeriesInstanceUID"):
        build_rtstruct(mask, reference, structure=GTV, model=MODEL)
    mask, reference = _inputs()
    reference[2].SOPInstanceUID = reference[1].SOPInstanceUID
    with pytest.raises(InputDataError, match=r"images 1 and 2 are both SOPInstanceUID \(0008,0018\) .* without "
                       r"ReferencedFrameNumber \(0008,1160\)"):
        build_rtstruct(mask, reference, structure=GTV, model=MODEL)
    mask, reference = _multiframe_inputs()
    reference[2].ReferencedFrameNumber = reference[0].ReferencedFrameNumber
    with pytest.raises(InputDataError, match=r"images 0 and 2 are both SOPInstanceUID \(0008,0018\) .* frame 3"):
        build_rtstruct(mask, reference, structure=GTV, model=MODEL)
    mask, reference = _inputs()
    del reference[0].FrameOfReferenceUID
    with pytest.raises(InputDataError, match=r"image 0 lacks \['FrameOfReferenceUID'\]"):
        build_rtstruct(mask, reference, structure=GTV, model=MODEL)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"name": "m", "version": "1"}, r"lacks \['sha256'\]"),
        ({"name": "m", "version": "1", "sha256": "xyz"}, "sha256 must be 64 hexadecimal digits, found 'xyz'"),
    ],
)
def test_refuses_incomplete_model(model: dict, message: str) -> None:
    mask, reference = _inputs()
    with pytest.raises(ModelSpecError, match=message):
        build_rtstruct(mask, reference, structure=GTV, model=model)


def test_long_model_name_fits_lo() -> None:
    mask, reference = _inputs()
    model = dict(MODEL, name="n" * 100)
    ds = build_rtstruct(mask, reference, structure=GTV, model=model)
    description = ds.StructureSetROISequence[0].ROIGenerationDescription
    assert len(description) <= 64 and description.endswith(f"1.2.3 sha256:{MODEL['sha256'][:16]}")
    assert all(len(v) <= 64 for v in ds.SoftwareVersions)


# ----------------------------------------------------------------------------------------------------------------
# real reference series: PGBM-001 T1post with its MaskTumor
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pgbm001(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not STUDY.is_dir():
        pytest.skip(f"shared data not found at {STUDY}")
    (study,) = scan_folder(STUDY)
    t1post = next(s for s in study.series if s.description == "T1post")
    mask_series = next(s for s in study.series if s.sop_class_uid == SECONDARY_CAPTURE_STORAGE)
    volume, reference = series_to_volume(t1post)
    mask_volume, _ = series_to_volume(mask_series)
    grid = volume.grid
    assert mask_volume.grid.same_as(grid), "MaskTumor is expected voxel-aligned with T1post"
    mask = mask_volume.array != 0
    assert np.count_nonzero(mask) == 6809
    ds = build_rtstruct(Volume(mask, grid, reference[0].FrameOfReferenceUID), reference, structure=GTV, model=MODEL)
    path = tmp_path_factory.mktemp("pgbm001") / "rtstruct_pgbm001.dcm"
    ds.save_as(path, enforce_file_format=True)
    return {"reference": reference, "grid": grid, "mask": mask, "path": path}


@needs_data
def test_real_series_even_odd_read_back_is_exact(pgbm001: dict) -> None:
    ds = pydicom.dcmread(pgbm001["path"])
    back = rasterize_rtstruct(ds, pgbm001["reference"], pgbm001["grid"])
    dice = _dice(back, pgbm001["mask"])
    assert dice >= 0.99, f"even-odd read-back Dice {dice:.4f}"
    assert np.array_equal(back, pgbm001["mask"]), f"read-back Dice {dice:.6f}, not exact"
    assert len(ds.ROIContourSequence[0].ContourSequence) > 0


@needs_data
@needs_dciodvfy
def test_real_series_passes_dciodvfy(pgbm001: dict) -> None:
    errors, output = _dciodvfy_errors(pgbm001["path"])
    assert not errors, output
    assert re.search(r"RTStructureSet", output), output


@needs_data
@needs_plastimatch
def test_real_series_plastimatch_rasterisation(pgbm001: dict, tmp_path: Path) -> None:
    """plastimatch ORs the contours of a slice (holes come back filled): it must hold every mask voxel, nothing
    outside the hole-filled mask, and reach Dice >= 0.90."""
    grid, mask = pgbm001["grid"], pgbm001["mask"]
    fixed = tmp_path / "t1post_grid.mha"
    sitk.WriteImage(grid_to_sitk(grid), str(fixed))
    out = tmp_path / "plastimatch_labelmap.nrrd"
    result = subprocess.run(
        ["plastimatch", "convert", "--input", str(pgbm001["path"]), "--fixed", str(fixed),
         "--output-labelmap", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and out.exists(), result.stdout[-2000:] + result.stderr[-2000:]
    image = sitk.ReadImage(str(out))
    assert image.GetSize() == (grid.shape[2], grid.shape[1], grid.shape[0])
    np.testing.assert_allclose(image.GetOrigin(), grid.origin, atol=1e-3)
    labels = sitk.GetArrayFromImage(image) > 0
    filled = np.stack([ndimage.binary_fill_holes(s) for s in mask])
    dice = _dice(labels, mask)
    missing, outside = np.count_nonzero(mask & ~labels), np.count_nonzero(labels & ~filled)
    assert missing == 0 and outside == 0 and dice >= 0.90, (
        f"plastimatch Dice {dice:.4f}, {missing} mask voxels missing, {outside} voxels outside the filled mask"
    )
