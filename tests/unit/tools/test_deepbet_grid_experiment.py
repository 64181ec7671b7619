"""tools/experiments/deepbet_grid.py (an experiment): deepbet "on the series' own voxels" must see exactly the array
deepbet's own command line gives its network for the same series written as NIfTI, and hand back a probability on
the series' voxels."""

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from operators.core.dicom.folder import scan_folder
from operators.core.dicom.volume import series_to_volume
from operators.core.geometry import Grid, Volume, volume_to_sitk
from tools.experiments.deepbet_grid import native_probability


class Recorder:
    """Stands in for deepbet's network: keeps what it is given and answers with a probability that differs along
    every axis, so that a wrong axis order or flip on the way back shows."""

    def run_model(self, x: np.ndarray) -> np.ndarray:
        self.seen = x.copy()
        i, j, k = np.indices(x.shape)
        return ((i + 2 * j + 3 * k) % 7 / 7.0).astype(np.float32)


def _t1post(shared_data) -> Volume:
    (study,) = scan_folder(shared_data / "tcia-brain-tumor-progression" / "PGBM-001" / "1991-11-19" / "T1post")
    (series,) = study.series
    return series_to_volume(series)[0]


def _feet_first(volume: Volume) -> Volume:
    """The same image with its slices listed the other way (the grid's third axis reversed)."""
    g = volume.grid
    affine = g.affine.copy()
    affine[:3, 3] = g.index_to_lps(np.array([[0.0, 0.0, g.shape[0] - 1]]))[0]
    affine[:3, 2] *= -1
    return Volume(array=volume.array[::-1].copy(), grid=Grid(shape=g.shape, affine=affine))


@pytest.mark.parametrize("order", ["as stored", "feet first"])
def test_native_input_is_what_deepbet_reads_from_a_nifti_file(shared_data, tmp_path, order):
    volume = _t1post(shared_data)
    volume = _feet_first(volume) if order == "feet first" else volume
    path = tmp_path / "t1post.nii.gz"
    sitk.WriteImage(volume_to_sitk(volume), str(path))
    # what deepbet.bet.BrainExtraction.run gives its network
    expected = nib.as_closest_canonical(nib.load(str(path))).get_fdata(dtype=np.float32)

    model = Recorder()
    probability = native_probability(volume, model)

    np.testing.assert_allclose(model.seen, expected, rtol=1e-6)
    # the answer comes back through the inverse reordering: put into the file's closest-RAS order again, it is
    # exactly what the network answered there
    assert probability.shape == volume.array.shape
    ornt = nib.orientations.io_orientation(nib.load(str(path)).affine)
    again = nib.orientations.apply_orientation(probability.transpose(2, 1, 0), ornt)
    np.testing.assert_array_equal(again, Recorder().run_model(expected))
