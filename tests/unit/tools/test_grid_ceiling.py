"""tools/experiments/grid_ceiling.py (an experiment): the round trip of a real tumour core to a model grid and back
through the app's geometry functions is exact on the reference's own grid and loses more the coarser the grid."""

from tools.experiments.grid_ceiling import ceiling
from training.brats import TUMOUR_CORE_LABELS, find_cases, read_tumour_core


def test_grid_round_trip_on_a_real_core(shared_data):
    case = find_cases(shared_data / "brats2018", ("T1c",), case_ids=["Brats18_CBICA_AQN_1"])[0]
    core = read_tumour_core(case, TUMOUR_CORE_LABELS)
    same, fine, coarse = ceiling(core, 1.0), ceiling(core, 1.5), ceiling(core, 2.0)
    assert same == 1.0  # the reference's own 1 mm grid: nothing lost, no shift
    assert 0.85 < coarse < fine < 1.0  # a half-voxel shift would drop these far lower
