"""DICOM-SEG writer: frames reference single-frame slices or the frames of one multi-frame instance."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicom_synth import enhanced_mr, pattern, rotation, save, stack_headers, write_stack

from operators.core.dicom.folder import scan_folder
from operators.core.dicom.volume import series_to_volume
from operators.core.errors import InputDataError
from operators.core.geometry import Volume
from operators.core.labels import structure
from operators.core.writers.seg import build_seg, source_images

ROT = rotation(20.0, 15.0)
ORIGIN = np.array([-20.0, 10.0, 30.0])
SHAPE = (6, 4, 5)
MODEL = {"name": "gbm-gtv-unet", "version": "1.2.3", "sha256": "0123456789abcdef" * 4}
FRAME_ORDER = [3, 0, 5, 1, 4, 2]  # frame f + 1 holds slice FRAME_ORDER[f]


def _volume(folder: Path) -> tuple[Volume, tuple]:
    (study,) = scan_folder(folder)
    (series,) = study.series
    return series_to_volume(series)


def _mask(shape: tuple[int, int, int]) -> np.ndarray:
    k, j, i = np.indices(shape)
    return (i + j + k) % 3 == 0  # a different pattern on every slice


def _roundtrip(ds: pydicom.Dataset) -> hd.seg.Segmentation:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return hd.seg.segread(buffer)


@pytest.fixture(scope="module")
def enhanced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Volume, tuple]:
    folder = tmp_path_factory.mktemp("enhanced")
    save(enhanced_mr(pattern(SHAPE), rot=ROT, origin=ORIGIN, step=3.0, pixel_spacing=(0.5, 0.8),
                     frame_order=FRAME_ORDER), folder / "mf")
    return _volume(folder)


def test_multiframe_reference_frames_are_referenced_by_frame_number(enhanced: tuple[Volume, tuple]) -> None:
    volume, headers = enhanced
    mask = volume.with_array(_mask(volume.grid.shape))
    seg = _roundtrip(build_seg([mask], headers, structures=[structure("GTV")], model=MODEL))

    uid = headers[0].SOPInstanceUID
    assert seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == uid
    by_frame = seg.get_pixels_by_source_frame(uid, source_frame_numbers=list(range(1, 7)), segment_numbers=[1])
    for f, k in enumerate(FRAME_ORDER):  # frame f + 1 is slice k of the volume
        np.testing.assert_array_equal(by_frame[f, ..., 0] > 0, mask.array[k])
    for item in seg.PerFrameFunctionalGroupsSequence:
        source = item.DerivationImageSequence[0].SourceImageSequence[0]
        k = FRAME_ORDER[int(source.ReferencedFrameNumber) - 1]
        np.testing.assert_allclose(np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float),
                                   ORIGIN + k * 3.0 * ROT[:, 2], atol=1e-4)


def test_same_pixels_as_the_single_frame_series(enhanced: tuple[Volume, tuple], tmp_path: Path) -> None:
    volume, headers = enhanced
    write_stack(tmp_path, pattern(SHAPE), stack_headers(SHAPE[0], rot=ROT, origin=ORIGIN, step=3.0))
    single_volume, single_headers = _volume(tmp_path)
    assert single_volume.grid.same_as(volume.grid)
    mask = _mask(volume.grid.shape)
    single = _roundtrip(build_seg([single_volume.with_array(mask)], single_headers, structures=[structure("GTV")],
                                  model=MODEL))
    multi = _roundtrip(build_seg([volume.with_array(mask)], headers, structures=[structure("GTV")], model=MODEL))
    a = single.get_pixels_by_source_instance([h.SOPInstanceUID for h in single_headers], segment_numbers=[1])
    b = multi.get_pixels_by_source_frame(headers[0].SOPInstanceUID,
                                         source_frame_numbers=[int(h.ReferencedFrameNumber) for h in headers],
                                         segment_numbers=[1])
    np.testing.assert_array_equal(a, b)


def test_unsupported_references_are_refused(enhanced: tuple[Volume, tuple]) -> None:
    _, headers = enhanced
    pixels = np.zeros((len(headers), 4, 5, 1), bool)
    other = [copy.deepcopy(h) for h in headers]
    other[0].SOPInstanceUID = "1.2.3.4"
    with pytest.raises(InputDataError, match=r"spreads its slices over 2 SOP instances"):
        source_images(other, pixels)
    with pytest.raises(InputDataError, match=r"NumberOfFrames \(0028,0008\) 6, but the volume holds frames "
                       r"\[1, 2, 4, 5, 6\]; expected every frame 1\.\.6"):  # the last slice is frame 3
        source_images(headers[:5], pixels[:5])
    single = stack_headers(3, rot=ROT)
    single[2].SOPInstanceUID = single[0].SOPInstanceUID
    with pytest.raises(InputDataError, match=r"repeats a SOPInstanceUID \(0008,0018\) without ReferencedFrameNumber"):
        source_images(single, pixels[:3])
